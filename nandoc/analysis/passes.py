"""The layer-by-layer passes on the selected real batches: the measurement the step checks share.

Computed once per run by the engine (the `passes` input) and handed to every check that declares
it; the drivers that localise a failing step run `run_layer_pass` on that one batch instead.
"""

from __future__ import annotations

from typing import Any

from nandoc.config import Config
from nandoc.instrument.batches import select_batches
from nandoc.instrument.layers import LayerPass, run_layer_pass
from nandoc.loading.dataset import Dataset


def layer_passes(model: Any, loss: Any, data: Dataset, config: Config | None
                 ) -> tuple[LayerPass, ...]:
    """One pass per selected training batch (first, random, extreme values, rare label).

    `loss` (a list of LossInfo, or None) only matters for a model without a compiled loss.
    """
    batch_size = config.train.batch_size if config is not None else 32
    seed = config.train.seed if config is not None else 0
    weights: dict = {}  # the passes leave the weights as they are: measured once
    return tuple(run_layer_pass(model, loss, b, seed=seed, weight_health=weights)
                 for b in select_batches(data.train, batch_size, seed))
