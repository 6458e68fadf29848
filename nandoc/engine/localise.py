"""Where the first non-finite value was born: the failing batch re-run from the last finite state,
layer by layer and through custom losses op by op. One path for replay and the callback.

The drivers bring the batch and what their own step could tell (`hint`: replay's step flags,
the callback's "the update did it" when the batch runs finite from the restored weights); the
layer pass names the layer, the loss probe the op and the line, and non-finite inputs the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nandoc.core.evidence import rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.records import FirstNonfinite
from nandoc.instrument.batches import Batch
from nandoc.instrument.layers import LayerPass, run_layer_pass
from nandoc.instrument.outputs import ProbePoints
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.model import LossInfo
from nandoc.loading.named import Named, feature_cells
from nandoc.quiet import keras_call_warnings

# The layer pass's vocabulary -> the contract's `where`.
WHERE = {"data": "data", "forward": "forward", "loss": "loss", "backward": "backward",
         "weight": "update"}


@dataclass(frozen=True)
class Localised:
    first: FirstNonfinite
    findings: list[Finding]
    layer_pass: LayerPass | None
    # The failing batch measured from the last finite state (NaN when not measured).
    loss: float = math.nan
    grad_norm: float = math.nan


def localise(model: Any, losses: list[LossInfo], batch: Batch, **kw: Any) -> Localised:
    """Localise the first non-finite value of the step (`epoch`, `step`) that ran `batch`
    (`layer_pass`: that batch's pass from the same weights, when the caller has it)."""
    with keras_call_warnings():
        return _localise(model, losses, batch, **kw)


def _localise(model: Any, losses: list[LossInfo], batch: Batch, *, epoch: int, step: int,
             sources: list[SourceFile], features: tuple[str, ...], file: str | None,
             hint: str, seed: int = 0, validation: bool = False,
             suspects: tuple[Finding, ...] = (), extra: dict[str, Any] | None = None,
             layer_pass: LayerPass | None = None,
             inputs: tuple[tuple[str, tuple[str, ...]], ...] = (),
             shards: Any = None) -> Localised:
    lp = layer_pass
    if lp is None:
        try:
            lp = run_layer_pass(model, losses or None, batch, seed=seed)
        except Exception:  # best effort; the driver's hint still says where
            lp = None
    seen = lp.first_nonfinite if lp is not None else None
    where = "validation" if validation else (WHERE.get(seen.where, "forward") if seen else hint)
    detail = seen.detail if seen is not None else None
    if seen is None and where == "update":
        detail = ("from the last finite weights, the failing batch's forward pass, loss and "
                  "gradients are all finite: the NaN came from the size of the update (learning "
                  "rate, exploding gradients) or from the steps since those weights were kept")
    bad_rows = _nonfinite_rows(batch)
    rows = bad_rows or [int(r) for r in batch.rows[:10]]
    findings = (_data_findings(batch, features, inputs, file, epoch, step, bad_rows, shards)
                if bad_rows else [])
    op = line = path = None
    if seen is not None and seen.layer and where in ("forward", "backward"):
        from nandoc.analysis.layer_probe import layer_op_findings

        try:
            in_layer = layer_op_findings(model, seen.layer, batch.x, batch.rows, sources,
                                         epoch, step)
        except Exception:  # best effort, as the layer pass
            in_layer = []
        findings += in_layer
        if in_layer:
            op = in_layer[0].location.op
            path, line = in_layer[0].location.file, in_layer[0].location.line
    if where == "update":
        from nandoc.analysis.update_probe import update_op_findings

        try:
            in_update = update_op_findings(model, batch.x, batch.y, epoch, step)
        except Exception:  # best effort, as the layer pass
            in_update = []
        findings += in_update
        if in_update:
            op = in_update[0].location.op
    for f in _loss_findings(losses, lp, batch, sources, suspects, epoch, step):
        findings.append(f)
        if op is None:
            op, path, line = f.location.op, f.location.file, f.location.line
            found = [int(batch.rows[i]) for i in f.measured.get("rows", []) if i < batch.n]
            rows = found or rows
    extra = dict(extra or {})
    common = _common(batch, lp, seen, bad_rows, findings)
    if common is not None:
        extra["rows_in_common"] = {"property": common.property, "value": common.value,
                                   "says": common.sentence}
        detail = f"{detail}; {common.sentence}" if detail else common.sentence
    first = FirstNonfinite(where=where, epoch=epoch, step=step,
                           layer=seen.layer if seen is not None else None, op=op, file=path,
                           line=line, rows=tuple(rows[:10]), detail=detail, extra=extra)
    return Localised(first, findings, lp, *_measured(lp))


def _common(batch: Batch, lp: LayerPass | None, seen: Any, bad_rows: list[int],
            findings: list[Finding]):
    """What the rows where the value was born share, from the best record of those rows."""
    from nandoc.analysis.rows import rows_in_common

    born: set[int] = set(bad_rows)
    if not born and lp is not None and seen is not None and seen.layer:
        record = lp.layer(seen.layer)
        born = set(record.nonfinite_rows) if record is not None else set()
    if not born:
        born = {int(batch.rows[i]) for f in findings for i in f.measured.get("rows", [])
                if f.location.kind == "loss" and i < batch.n}
    if not born:
        return None
    mask = np.isin(batch.rows, list(born))
    return rows_in_common(batch.x, batch.y, mask)


def _measured(lp: LayerPass | None) -> tuple[float, float]:
    if lp is None:
        return math.nan, math.nan
    norms = [w.grad_norm for w in lp.weights if w.grad_norm is not None]
    grad = math.sqrt(sum(n * n for n in norms)) if norms else math.nan
    return (lp.loss if lp.loss is not None else math.nan), grad


def _loss_findings(losses: list[LossInfo], lp: LayerPass | None, batch: Batch,
                   sources: list[SourceFile], suspects: tuple[Finding, ...], epoch: int,
                   step: int) -> list[Finding]:
    """Custom losses probed op by op at the model's real predictions on the failing batch."""
    from nandoc.analysis.loss_probe import loss_findings

    if lp is None or lp.y_pred is None:
        return []
    out = []
    for loss in losses:
        if loss.fn is None:
            continue
        y_true = batch.y
        if isinstance(y_true, Named):  # the pass keeps the first output's prediction
            if loss.output != next(iter(y_true.arrays)):
                continue
            y_true = y_true[loss.output]
        y_pred = np.asarray(lp.y_pred, dtype=np.float32).reshape(len(batch.y), -1)
        points = ProbePoints(np.asarray(y_true, dtype=np.float32), y_pred, tuple(
            f"file row {r}, the model's prediction at epoch {epoch} step {step}"
            for r in batch.rows))
        for f in loss_findings(loss, points, sources, suspects, clear=False):
            if f.severity is Severity.ERROR:
                out.append(f.with_(location=replace(f.location, epoch=epoch, step=step)))
    return out


def _nonfinite_rows(batch: Batch) -> list[int]:
    x = batch.x.reshape(batch.n, -1)
    y = batch.y.reshape(batch.n, -1)
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    return [int(r) for r in batch.rows[bad]]


def _data_findings(batch: Batch, features: tuple[str, ...],
                   inputs: tuple[tuple[str, tuple[str, ...]], ...], file: str | None, epoch: int,
                   step: int, rows: list[int], shards: Any = None) -> list[Finding]:
    """`shards`: a ShardMap when the data is a shard set: the finding names the shard of the
    first bad row and rows within it, and the evidence every shard the rows fall in."""
    from nandoc.loading.shards import shard_location

    out = []
    for name, cells in feature_cells(batch.x, features, inputs):
        mask = ~np.isfinite(cells).all(axis=1)
        if mask.any():
            col_rows = [int(r) for r in batch.rows[mask]]
            where_file, local, in_shards = shard_location(shards, col_rows[:10], file)
            out.append(Finding(
                cause="data-nonfinite", severity=Severity.ERROR, confidence=0.99,
                title=f"non-finite input in column '{name}' at epoch {epoch} step {step}",
                evidence=(f"The batch of the first non-finite step holds non-finite values in "
                          f"'{name}' at {rows_phrase(col_rows)}{in_shards}."),
                location=Location(kind="data", column=name, rows=tuple(local),
                                  file=where_file, epoch=epoch, step=step),
                fix="Drop or impute those rows before training.",
                measured={"rows": col_rows}))
    return out


def failing_batch(lp: LayerPass | None, epoch: int | None, step: int | None,
                  rows: tuple[int, ...] | list[int] = ()) -> dict[str, Any]:
    """`report.extra["failing_batch"]`: the failing batch's layers in model order, from the
    layer pass that localised it (no second pass): the fraction of finite output values, the
    largest finite |activation|, and the layer's weight-gradient norm (None: no weights, or
    no gradient reaches them)."""

    def finite(v: float | None) -> float | None:
        return float(v) if v is not None and math.isfinite(v) else None

    layers = []
    for rec in lp.layers if lp is not None else ():
        extremes = [abs(v) for v in (rec.min, rec.max) if math.isfinite(v)]
        norms = [w.grad_norm for w in rec.weights if w.grad_norm is not None]
        layers.append({"layer": rec.name, "finite_fraction": float(rec.finite_fraction),
                       "max_abs": max(extremes) if extremes else None,
                       "grad_norm": finite(math.sqrt(sum(n * n for n in norms)))
                       if norms else None})
    out: dict[str, Any] = {"epoch": epoch, "step": step}
    if rows:
        out["rows"] = [int(r) for r in rows]
    out["layers"] = layers
    return out
