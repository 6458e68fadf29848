"""The failing batch as numpy arrays, and the diagnosis the callback runs on it.

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

BATCH_NAME = "the failing batch"


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
    from nandoc.api import _to_numpy

    ux, _ = _to_numpy(data[0], "data x")
    uy, _ = _to_numpy(data[1], "data y")
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


def where_first(model: Any, inputs: Any) -> dict[str, Any]:
    """Where the first non-finite value shows in a layer pass of the failing batch, from the
    weights the model holds now (the last finite ones): data, forward, loss, backward, or, when
    the whole pass stays finite, the update itself."""
    from nandoc.analysis.passes import passes_for

    if inputs.data is None or inputs.model is None:
        return {}
    try:
        passes = passes_for(inputs.model, inputs.loss or None, inputs.data, inputs.config)
    except Exception as exc:  # the checks report the same failure; keep the report going
        return {"where": None, "detail": f"the layer pass failed: {type(exc).__name__}: {exc}"}
    first = next((p for p in passes if p.batch.name == "first"), passes[0] if passes else None)
    if first is None:
        return {}
    found = first.first_nonfinite
    if found is None:
        return {"where": "update", "layer": None,
                "detail": "from the last finite weights, the failing batch's forward pass, loss "
                          "and gradients are all finite: the NaN came from the size of the "
                          "update (learning rate, exploding gradients) or from the steps since "
                          "those weights were kept"}
    return {"where": found.where, "layer": found.layer, "detail": found.detail}


def update_finding(model: Any, inputs: Any, info: dict[str, Any]):
    """When the failing batch is finite all the way through from the last finite weights, the
    update itself overflowed: a finding on the optimizer, with the gradient norm measured on
    that batch and the learning rate the optimizer used."""
    import math

    from nandoc.analysis.passes import passes_for
    from nandoc.core.causes import CAUSES
    from nandoc.core.finding import Finding, Location, Severity

    if info.get("where") != "update" or inputs.data is None:
        return None
    passes = passes_for(inputs.model, inputs.loss or None, inputs.data, inputs.config)
    first = next((p for p in passes if p.batch.name == "first"), None)
    if first is None:
        return None
    norms = [w.grad_norm for w in first.weights if w.grad_norm is not None]
    grad = math.sqrt(sum(n * n for n in norms)) if norms else None
    opt = getattr(model, "optimizer", None)
    try:
        lr = float(opt.learning_rate) if opt is not None else None
    except (TypeError, ValueError, AttributeError):
        lr = None
    early = info.get("global_step", 0) <= 20
    cause = "learning-rate-too-high" if early else "exploding-gradients"
    kept = info.get("restored_from") or {}
    since = (f"the last finite weights (epoch {kept.get('epoch')}, step {kept.get('step')})"
             if kept else "the weights the model holds")
    loss = f"a finite loss ({first.loss:.4g})" if first.loss is not None else "a finite loss"
    numbers = ", ".join(p for p in (f"global gradient norm {grad:.3g}" if grad is not None else "",
                                    f"learning rate {lr:.3g}" if lr is not None else "") if p)
    return Finding(
        cause=cause, severity=Severity.ERROR, confidence=0.6 if early else 0.5,
        title=(f"the update at epoch {info.get('epoch')}, step {info.get('step')} made the "
               f"weights non-finite"),
        evidence=(f"From {since}, the failing batch gives {loss} and finite gradients"
                  f"{' (' + numbers + ')' if numbers else ''}, yet after the optimizer's update "
                  f"the weights were non-finite: the step was too large"
                  + (" from the first steps of training" if early else "") + "."),
        location=Location(kind="optimizer", name=type(opt).__name__ if opt else None,
                          epoch=info.get("epoch"), step=info.get("step")),
        fix=f"{CAUSES[cause].fix}\n    {CAUSES[cause].example}",
        check="nandoc-callback",
        measured={"grad_norm": grad, "learning_rate": lr, "global_step": info.get("global_step")},
    )
