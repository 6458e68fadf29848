"""Token or category ids outside an Embedding's input_dim: on CPU the lookup raises
InvalidArgumentError at the first batch holding one; on GPU it silently returns zeros, and the
model trains on wrong inputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.core.evidence import rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.model_graph import embeddings_fed_by_input
from nandoc.loading.dataset import Dataset
from nandoc.loading.named import Named
from nandoc.loading.shards import shard_location

CAUSE = "input-index-out-of-range"


def _ids(model: Any, data: Dataset, x: Any, index: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The array the input `index` is fed, and the feature names of its columns."""
    if not isinstance(x, Named):
        return np.asarray(x), data.features
    name = str(model.inputs[index].name).split(":")[0]
    if name not in x.arrays:
        name = list(x.arrays)[index]
    return x[name], dict(data.inputs).get(name, (name,))


@check(id="input-index-out-of-range", needs=("model", "data"), causes=(CAUSE,))
def input_index_out_of_range(model: Any, data: Dataset) -> Iterator[Finding]:
    """Integer inputs outside the input_dim of the Embedding that reads them."""
    for path, layer, index in embeddings_fed_by_input(model):
        dim = int(layer.input_dim)
        for split in (data.train, data.val):
            if split is None or not split.n:
                continue
            ids, features = _ids(model, data, split.x, index)
            x = ids.reshape(split.n, -1)
            bad = np.isfinite(x) & ((x < 0) | (x >= dim))
            rows_bad = bad.any(axis=1)
            if not rows_bad.any():
                continue
            values = x[bad]
            cols = [features[j % len(features)] for j in
                    np.unique(np.nonzero(bad)[1])] if features else []
            rows = [int(r) for r in split.rows[rows_bad]]
            file, local, where = shard_location(data.shard_map(split), rows[:10], split.file)
            yield Finding(
                cause=CAUSE, severity=Severity.ERROR, confidence=0.95,
                title=(f"ids up to {int(values.max())} feed Embedding '{path}' of input_dim "
                       f"{dim}"),
                evidence=(f"{int(rows_bad.sum())} {split.name} sample(s) hold ids outside "
                          f"[0, {dim}) (min {int(values.min())}, max {int(values.max())}), at "
                          f"{rows_phrase(rows)}"
                          + (f", in column(s) {', '.join(map(repr, cols[:5]))}" if cols else "")
                          + ". On CPU the Embedding lookup raises InvalidArgumentError at the "
                          "first batch holding one; on GPU it silently returns zeros for them, "
                          "and the model trains on wrong inputs." + where),
                location=Location(kind="data", layer=path, column=cols[0] if cols else None,
                                  rows=local, file=file),
                fix=(f"Size the Embedding to the vocabulary (input_dim >= {int(values.max()) + 1}),"
                     f" or map unknown ids to an out-of-vocabulary index before the model."),
                measured={"input_dim": dim, "max": float(values.max()),
                          "min": float(values.min()), "rows": rows[:100]},
            )
            break  # one finding per Embedding: training first, else validation
