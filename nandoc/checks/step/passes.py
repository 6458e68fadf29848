"""The layer-by-layer passes on real batches, run once per run and shared by the step checks.

Several checks read the same passes, so `passes_for` keeps the last few results in a small
module-level cache keyed by `id(model)`, `id(data)`, the batch size and the seed. An entry holds
the model and data objects themselves, so their ids cannot be reused by new objects while the
entry lives, and a hit is only taken when those objects are the very ones asked about. A pass
that raises is cached as its exception and re-raised, so that every check that needs it reports
the same failure without paying for it again. Other parts of nandoc (replay, the loss probe)
may call `passes_for` too, to reuse the passes of the current run.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from nandoc.config import Config
from nandoc.instrument.batches import select_batches
from nandoc.instrument.layers import LayerPass, run_layer_pass
from nandoc.loading.dataset import Dataset

_CACHE_SIZE = 2
_cache: OrderedDict[tuple, tuple[Any, Dataset, tuple[LayerPass, ...] | Exception]] = \
    OrderedDict()


def passes_for(model: Any, loss: Any, data: Dataset, config: Config | None
               ) -> tuple[LayerPass, ...]:
    """One pass per selected training batch (first, random, extreme values, rare label).

    `loss` (a list of LossInfo, or None) only matters for a model without a compiled loss; it
    is not part of the cache key.
    """
    batch_size = config.train.batch_size if config is not None else 32
    seed = config.train.seed if config is not None else 0
    key = (id(model), id(data), batch_size, seed)
    hit = _cache.get(key)
    if hit is not None and hit[0] is model and hit[1] is data:
        _cache.move_to_end(key)
        result = hit[2]
    else:
        try:
            result = tuple(run_layer_pass(model, loss, b, seed=seed)
                           for b in select_batches(data.train, batch_size, seed))
        except Exception as exc:  # cached too: every check reports it, none re-runs it
            result = exc
        _cache[key] = (model, data, result)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    if isinstance(result, Exception):
        raise result
    return result


def clear_cache() -> None:
    """Forget every cached pass (tests; a long-lived process checking many models)."""
    _cache.clear()
