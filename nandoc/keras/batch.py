"""The failing batch as numpy arrays, matched to the user's rows.

A batch comes from `fit`'s own iterator as tensors: a tuple (x, y[, sample_weight]), each a
tensor or, under a tf.distribute strategy, one tensor per replica (concatenated here back into
the global batch, in replica order). When the user handed NanDoctor the arrays they fit on,
each sample of the batch is matched to its row there, so findings name the user's rows even
though `fit` shuffled them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BatchArrays:
    x: np.ndarray | None  # None: the model takes several inputs (dict/list), not one array
    y: np.ndarray | None
    rows: np.ndarray | None  # the user's row (from 1) of each sample, when it could be matched
    size: int
    note: str = ""


def _distributed_parts(value: Any, strategy: Any) -> list[Any]:
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return list(strategy.experimental_local_results(value))
    return [value]


def to_arrays(batches: list[Any], strategy: Any, data: tuple[Any, Any] | None) -> BatchArrays:
    """The captured batch(es) of one step as (x, y, rows)."""
    import keras

    xs, ys = [], []
    note = ""
    for batch in batches:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        x_parts = _distributed_parts(x, strategy)
        y_parts = _distributed_parts(y, strategy) if y is not None else [None] * len(x_parts)
        for xp, yp in zip(x_parts, y_parts, strict=False):
            if isinstance(xp, (dict, list, tuple)):
                return BatchArrays(None, None, None, 0, "the model takes several inputs; "
                                   "nandoc diagnosed the model and its loss without the data")
            xs.append(np.asarray(xp))
            if yp is not None and not isinstance(yp, (dict, list, tuple)):
                ys.append(np.asarray(yp))
    x_all = np.concatenate(xs, axis=0)
    if len(ys) != len(xs):
        return BatchArrays(x_all, None, None, len(x_all), "the batch holds no single target "
                           "array; only the model and the inputs were checked")
    y_all = np.concatenate(ys, axis=0)
    rows = match_rows(x_all, y_all, data) if data is not None else None
    if data is not None and rows is None:
        note = ("the batch's samples could not all be found in the data given to NanDoctor, "
                "so rows count within the batch")
    return BatchArrays(x_all, y_all, rows, len(x_all), note)


def _keys(a: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(a.reshape(a.shape[0], -1))
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).reshape(-1)


def match_rows(x: np.ndarray, y: np.ndarray, data: tuple[Any, Any]) -> np.ndarray | None:
    """The row (from 1) in the user's arrays of each batch sample, matched on the exact values
    of x and y as fit saw them (cast to the batch's dtypes); None when one does not match."""
    from nandoc.drivers.arrays import to_numpy

    ux, _ = to_numpy(data[0], "data x")
    uy, _ = to_numpy(data[1], "data y")
    if ux.shape[1:] != x.shape[1:] or ux.shape[0] != uy.shape[0]:
        return None
    ux = ux.astype(x.dtype)
    uy = uy.astype(y.dtype).reshape(uy.shape[0], -1)
    bx, by = x, y.reshape(y.shape[0], -1)
    if uy.shape[1] != by.shape[1]:
        return None
    index: dict[bytes, int] = {}
    for i, (kx, ky) in enumerate(zip(_keys(ux), _keys(uy), strict=True)):
        index.setdefault(kx.tobytes() + ky.tobytes(), i + 1)
    rows = [index.get(kx.tobytes() + ky.tobytes())
            for kx, ky in zip(_keys(bx), _keys(by), strict=True)]
    if any(r is None for r in rows):
        return None
    return np.asarray(rows, dtype=np.int64)
