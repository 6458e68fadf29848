"""Localise the first non-finite step: re-run its batch from the last finite state, layer by
layer (part 2's instrument) and through the loss op by op, and say where it was born."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nandoc.core.evidence import rows_phrase
from nandoc.checks.loss.probe import loss_findings
from nandoc.core.finding import Finding, Location, Severity
from nandoc.instrument.batches import Batch
from nandoc.instrument.layers import LayerPass, run_layer_pass
from nandoc.instrument.outputs import ProbePoints
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.replay.loop import Failure

WHERE = {"data": "forward", "forward": "forward", "loss": "loss", "backward": "backward",
         "weight": "update"}


@dataclass(frozen=True)
class Localised:
    first_nonfinite: dict[str, Any]
    findings: list[Finding]
    layer_pass: LayerPass | None


def failing_batch(data: Dataset, failure: Failure) -> Batch:
    split = data.val if failure.split == "validation" and data.val is not None else data.train
    idx = failure.indices
    return Batch(name=f"epoch {failure.epoch} step {failure.step}", indices=idx,
                 x=split.x[idx], y=split.y[idx], rows=split.rows[idx],
                 why="the batch of the first non-finite step")


def _fallback_where(failure: Failure) -> str:
    if failure.where == "validation":
        return "validation"
    s = failure.stats
    if s is None:
        return "loss"
    if not np.isfinite(s.loss):
        return "loss"
    if not bool(np.all(s.layer_grad_finite)):
        return "backward"
    return "update" if s.state_finite is False and bool(np.all(s.layer_weight_finite)) is False \
        else "forward"


def localise(model: Any, losses: list[LossInfo], data: Dataset, failure: Failure,
             sources: list[SourceFile], seed: int = 0) -> Localised:
    batch = failing_batch(data, failure)
    try:
        lp = run_layer_pass(model, losses, batch, seed=seed)
    except Exception:  # the localisation is best effort; the step flags still say where
        lp = None
    first = lp.first_nonfinite if lp is not None else None
    where = WHERE.get(first.where, "forward") if first is not None else _fallback_where(failure)
    if failure.where == "validation":
        where = "validation"
    info: dict[str, Any] = {"epoch": failure.epoch, "step": failure.step, "where": where,
                            "layer": first.layer if first is not None else None, "op": None}
    if first is not None:
        info["detail"] = first.detail
    bad_rows = _nonfinite_rows(batch)
    info["rows"] = [int(r) for r in (bad_rows if bad_rows else batch.rows[:10])]
    findings: list[Finding] = []
    if bad_rows:
        findings += _data_findings(batch, data, failure, bad_rows)
    for loss in losses:
        if loss.builtin or loss.fn is None or lp is None or lp.y_pred is None:
            continue
        y_pred = np.asarray(lp.y_pred, dtype=np.float32).reshape(len(batch.y), -1)
        points = ProbePoints(batch.y.astype(np.float32), y_pred, tuple(
            f"file row {r}, the model's prediction at epoch {failure.epoch} step "
            f"{failure.step}" for r in batch.rows))
        for f in loss_findings(loss, points, sources, clear=False):
            if f.severity is not Severity.ERROR:
                continue
            rows = [int(batch.rows[i]) for i in f.measured.get("rows", [])
                    if i < len(batch.rows)]
            findings.append(f.with_(location=replace(f.location, epoch=failure.epoch,
                                                     step=failure.step)))
            if info["op"] is None:
                info["op"] = f.location.op
                info["file"], info["line"] = f.location.file, f.location.line
                if rows:
                    info["rows"] = rows[:10]
    return Localised(info, findings, lp)


def _nonfinite_rows(batch: Batch) -> list[int]:
    x = batch.x.reshape(batch.n, -1)
    y = batch.y.reshape(batch.n, -1)
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    return [int(r) for r in batch.rows[bad]]


def _data_findings(batch: Batch, data: Dataset, failure: Failure, rows: list[int]
                   ) -> list[Finding]:
    x = batch.x.reshape(batch.n, -1, len(data.features))
    out = []
    for j, name in enumerate(data.features):
        mask = ~np.isfinite(x[:, :, j]).all(axis=1)
        if mask.any():
            col_rows = [int(r) for r in batch.rows[mask]]
            out.append(Finding(
                cause="data-nonfinite", severity=Severity.ERROR, confidence=0.99,
                title=f"non-finite input in column '{name}' at epoch {failure.epoch} step "
                      f"{failure.step}",
                evidence=(f"The batch of the first non-finite step holds non-finite values in "
                          f"'{name}' at {rows_phrase(col_rows)}."),
                location=Location(kind="data", column=name, rows=tuple(col_rows[:10]),
                                  file=data.train.path.name, epoch=failure.epoch,
                                  step=failure.step),
                fix="Drop or impute those rows before training.",
                measured={"rows": col_rows}))
    return out
