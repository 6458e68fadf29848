"""The failing batch as numpy arrays, matched to the user's rows.

A batch comes from `fit`'s own iterator as tensors: a tuple (x, y[, sample_weight]), where x and
y are each a tensor, or a dict / list of tensors for a model with several inputs or outputs, and
each tensor is, under a tf.distribute strategy, one tensor per replica (concatenated here back
into the global batch, in replica order). The structure is kept, so the diagnosis feeds and
names each model input and output. When the user handed NanDoctor the arrays they fit on, each
sample of the batch is matched to its row there, so findings name the user's rows even though
`fit` shuffled them.

All of this runs once, at the first NaN, on the batch the callback kept a reference to: nothing
here is done per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BatchArrays:
    x: Any  # an array, a dict / list of arrays (several inputs); None: could not be read
    y: Any  # likewise for the targets; None: the batch has none (the model computes its loss)
    rows: np.ndarray | None  # the user's row (from 1) of each sample, when it could be matched
    size: int
    note: str = ""


def _distributed_parts(value: Any, strategy: Any) -> list[Any]:
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return list(strategy.experimental_local_results(value))
    return [value]


def _numpy(value: Any, strategy: Any) -> Any:
    """Tensors (per replica, in dicts or lists) as numpy arrays in the same structure."""
    parts = _distributed_parts(value, strategy)
    if len(parts) > 1 or parts[0] is not value:
        return _concat([_numpy(p, strategy) for p in parts])
    if isinstance(value, dict):
        return {k: _numpy(v, strategy) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy(v, strategy) for v in value]
    return np.asarray(value)


def _concat(parts: list[Any]) -> Any:
    """Parts of one structure, sample after sample (one part is returned as it is)."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, list):
        return [_concat([p[i] for p in parts]) for i in range(len(first))]
    return first if len(parts) == 1 else np.concatenate(parts, axis=0)


def _leaves(value: Any) -> list[Any]:
    """The arrays of a structure in a fixed order (a dict's by sorted key)."""
    if isinstance(value, dict):
        return [a for k in sorted(value, key=str) for a in _leaves(value[k])]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, dict) or hasattr(v, "shape") for v in value):
        return [a for v in value for a in _leaves(v)]
    return [value]


def to_arrays(batches: list[Any], strategy: Any, data: tuple[Any, Any] | None) -> BatchArrays:
    """The captured batch(es) of one step as (x, y, rows)."""
    import keras

    xs, ys = [], []
    try:
        for batch in batches:
            x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
            xs.append(_numpy(x, strategy))
            ys.append(_numpy(y, strategy) if y is not None else None)
        x_all = _concat(xs)
        y_all = _concat(ys) if all(y is not None for y in ys) else None
        size = int(np.shape(_leaves(x_all)[0])[0])
    except (TypeError, ValueError, IndexError) as exc:  # e.g. ragged or sparse tensors
        return BatchArrays(None, None, None, 0, f"the batch could not be read as arrays ({exc}); "
                           f"nandoc diagnosed the model and its loss without the data")
    note = "" if y_all is not None or not any(y is not None for y in ys) else \
        "the batch's targets could not be read; only the model and the inputs were checked"
    rows = match_rows(x_all, y_all, data) if data is not None else None
    if data is not None and rows is None:
        note = ("the batch's samples could not all be found in the data given to NanDoctor, "
                "so rows count within the batch")
    return BatchArrays(x_all, y_all, rows, size, note)


def _keys(a: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(a.reshape(a.shape[0], -1))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).reshape(-1)


def match_rows(x: Any, y: Any, data: tuple[Any, Any]) -> np.ndarray | None:
    """The row (from 1) in the user's arrays of each batch sample, matched on the exact values
    of every input and target array as fit saw them (cast to the batch's dtypes); None when
    one does not match. `x` and `y` may be arrays or dicts / lists of arrays, as `data`."""
    from nandoc.drivers.arrays import as_array
    from nandoc.errors import DataError

    batch = _leaves(x) + (_leaves(y) if y is not None else [])
    user = _leaves(data[0]) + (_leaves(data[1]) if y is not None and data[1] is not None else [])
    if len(user) != len(batch):
        return None
    n = None
    keys_user, keys_batch = [], []
    for u, b in zip(user, batch, strict=True):
        try:
            u = as_array(u, "data")
        except (DataError, TypeError, ValueError):  # not arrays: rows count within the batch
            return None
        if u.ndim == 0 or (n is not None and len(u) != n):
            return None
        n = len(u)
        u, b = u.astype(b.dtype).reshape(n, -1), b.reshape(len(b), -1)
        if u.shape[1] != b.shape[1]:
            return None
        keys_user.append(_keys(u))
        keys_batch.append(_keys(b))
    index: dict[bytes, int] = {}
    for i, parts in enumerate(zip(*keys_user, strict=True)):
        index.setdefault(b"".join(k.tobytes() for k in parts), i + 1)
    rows = [index.get(b"".join(k.tobytes() for k in parts))
            for parts in zip(*keys_batch, strict=True)]
    if any(r is None for r in rows):
        return None
    return np.asarray(rows, dtype=np.int64)
