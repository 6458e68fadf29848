"""What a layer pass measured, as plain data, and where it first saw a non-finite value.

`nandoc.instrument.layers` runs the pass and fills these in: one LayerRecord per layer call (in
execution order), one WeightRecord per trainable weight, and the LayerPass that holds them.
`locate` reads a pass in the order a training step computes (data -> forward -> loss ->
backward -> weight) and returns the first non-finite value as the core FirstNonfinite record,
with a sentence a user can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nandoc.core.records import FirstNonfinite
from nandoc.instrument.batches import Batch

FLOAT16_MAX = 65504.0


@dataclass(frozen=True)
class WeightRecord:
    """One trainable weight: its value's health and its gradient's."""

    name: str  # "dense/kernel", or "block/dense/kernel" inside a nested model
    layer: str
    path: str  # Keras' own unique variable path, e.g. "sequential/dense/kernel"
    finite: bool
    max_abs: float
    grad_norm: float | None  # None: no gradient of the loss reaches it
    grad_finite: bool | None


@dataclass(frozen=True)
class LayerRecord:
    """One layer call, in execution order."""

    name: str  # nested layers as "outer/inner"
    class_name: str
    dtype: str  # the output's dtype, e.g. float32, float16
    inputs_finite: bool
    finite_fraction: float  # of the output's values
    max_abs: float  # over the non-NaN values: inf when one is inf; NaN when all are NaN
    min: float  # over the finite values (NaN when none)
    max: float
    fp16_headroom: float | None  # 65504 / max |value| for float16 outputs, else None
    nonfinite_rows: tuple[int, ...]  # file rows of the samples whose output is non-finite
    grad_norm: float | None  # |d loss / d output|; None: no loss, or the output is not used
    grad_finite: bool | None
    # d loss / d (this layer's own inputs); None where training never computes it: no trainable
    # weight upstream of the inputs (the data, or weightless layers applied to it)
    input_grad_finite: bool | None
    weights: tuple[WeightRecord, ...]
    # the finite output values binned: (min, max, count, sum, sum of squares, right bucket
    # edges, counts per bucket), for TensorBoard's histograms; None when no value is finite
    histogram: tuple[float, float, int, float, float, tuple[float, ...], tuple[int, ...]] | None \
        = None

    @property
    def finite(self) -> bool:
        return self.finite_fraction == 1.0


def histogram_of(v: np.ndarray, bins: int = 30, lo: float | None = None,
                 hi: float | None = None) -> tuple | None:
    """`LayerRecord.histogram` of finite values (None when there are none). Equal-width bins
    between the min and the max, counted with bincount a chunk at a time, in float64 (no
    float64 copy of `v`; np.histogram's edge corrections cost twice as much on a
    transformer's activations, and a value exactly on an inner edge may land one bin apart).
    `lo`/`hi`: the min and max of `v` when the caller has them already."""
    if not v.size:
        return None
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    uniform = hi > lo and np.isfinite(hi - lo)
    if uniform:
        edges = np.linspace(lo, hi, bins + 1)
        counts = np.zeros(bins, dtype=np.int64)
        scale = bins / (hi - lo)
    else:  # one value (or a span beyond float64): numpy's own choice of edges
        counts, edges = np.histogram(v, bins=bins)
    squares = total = 0.0
    for i in range(0, v.size, 1 << 16):  # float64 sums without a float64 copy of `v`
        c = v[i:i + (1 << 16)].astype(np.float64, copy=False)
        squares += float(np.einsum("i,i->", c, c))  # not BLAS: its threads cost 70x here
        total += float(c.sum())
        if uniform:
            idx = ((c - lo) * scale).astype(np.intp)
            np.minimum(idx, bins - 1, out=idx)
            counts += np.bincount(idx, minlength=bins)
    return (lo, hi, int(v.size), total, squares,
            tuple(float(e) for e in edges[1:]), tuple(int(c) for c in counts))


@dataclass(frozen=True, eq=False)
class LayerPass:
    """The measurements of one pass on one batch."""

    batch: Batch
    mode: str  # "layers": layer by layer; "whole-model": a subclassed model run as one call
    input_finite: bool
    target_finite: bool
    input_max_abs: float  # over the non-NaN input values
    layers: tuple[LayerRecord, ...]
    y_pred: np.ndarray | None  # the model's (first) output, float32
    loss: float | None  # None: no compiled loss, or it raised
    loss_error: str | None  # "ValueError: The truth value of an array ..."
    backward_error: str | None  # the gradient could not be computed (an op without one)
    seconds: float

    @property
    def weights(self) -> tuple[WeightRecord, ...]:
        return tuple(w for rec in self.layers for w in rec.weights)

    def layer(self, name: str) -> LayerRecord | None:
        return next((rec for rec in self.layers if rec.name == name), None)

    @property
    def first_nonfinite(self) -> FirstNonfinite | None:
        return locate(self)


# -- localising ------------------------------------------------------------------------------


def _kinds(rec: LayerRecord) -> str:
    if np.isnan(rec.max_abs):
        return "NaN"
    return "inf" if rec.max_abs == float("inf") else "NaN"


def _rows(rows: Sequence[int]) -> str:
    shown = ", ".join(str(r) for r in list(rows)[:5])
    return shown + (" …" if len(rows) > 5 else "")


def _found(where: str, layer: str | None, detail: str) -> FirstNonfinite:
    """The core record, with the instrument's `where`: data, forward, loss, backward, weight."""
    return FirstNonfinite(where=where, layer=layer, detail=detail)


def locate(p: LayerPass) -> FirstNonfinite | None:
    """The first non-finite value in the order data -> forward -> loss -> backward -> weight."""
    b = p.batch
    if not p.input_finite or not p.target_finite:
        bad = np.zeros(len(b.rows), dtype=bool)
        what = []
        for label, values in (("features", b.x), ("targets", b.y)):
            rows_bad = ~np.isfinite(values.reshape(len(b.rows), -1)).all(axis=1)
            if rows_bad.any():
                what.append(label)
                bad |= rows_bad
        return _found("data", None, f"batch '{b.name}' has NaN/inf {' and '.join(what)}"
                                    f" at rows {_rows(b.rows[bad])}")
    for rec in p.layers:
        if not rec.finite and rec.inputs_finite:
            bad_w = [w.name for w in rec.weights if not w.finite]
            why = f" (weight {bad_w[0]} is non-finite)" if bad_w else ""
            return _found(
                "forward", rec.name,
                f"the output of layer '{rec.name}' ({rec.class_name}) turns {_kinds(rec)} from "
                f"finite inputs{why}, rows {_rows(rec.nonfinite_rows)}")
    if p.loss is not None and not np.isfinite(p.loss):
        return _found("loss", None, f"the loss is {p.loss} on finite model outputs")
    for rec in reversed(p.layers):
        if rec.grad_finite is False:
            continue
        bad_w = [w.name for w in rec.weights if w.grad_finite is False]
        if rec.input_grad_finite is False or bad_w:
            into = "its input" if rec.input_grad_finite is False else f"weight {bad_w[0]}"
            return _found(
                "backward", rec.name,
                f"the gradient is finite at the output of layer '{rec.name}' "
                f"({rec.class_name}) and non-finite at {into}")
    if p.layers and p.layers[-1].grad_finite is False:
        return _found("backward", None, "the gradient of the loss w.r.t. the model's "
                                        "output is already non-finite")
    bad = next((w for w in p.weights if not w.finite), None)
    if bad is not None:
        return _found("weight", bad.layer, f"weight {bad.name} holds NaN/inf")
    return None
