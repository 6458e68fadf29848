"""data-unscaled, measured: unscaled features that really overflow or blow up the first layer.

The static data-unscaled check reads the columns' ranges; this one runs real batches through
the model. When a batch with features of |value| >= 1e4 makes a layer's output non-finite from
finite inputs, or the first layer's outputs reach 1e6, the static suspicion is confirmed: the
finding takes the static one's place (same cause, data file and column) and supersedes it. When
the model's outputs stay finite and its activations moderate (an input Normalization layer, say),
nothing is emitted and the static warning stands.
"""

from __future__ import annotations

import numpy as np

from nandoc.core.causes import CAUSES
from nandoc.core.evidence import num, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.layers import LayerPass
from nandoc.loading.dataset import Dataset
from nandoc.loading.named import feature_cells

LARGE_INPUT = 1e4
LARGE_ACTIVATION = 1e6


def _column_max(cells: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """max |value| per feature, NaN and inf cells left out."""
    out = []
    for _, v in cells:
        a = np.abs(v.astype(np.float64))
        out.append(float(np.where(np.isfinite(a), a, 0.0).max()) if a.size else 0.0)
    return np.array(out)


def _verdict(p: LayerPass) -> tuple[int, str, str] | None:
    """(strength, layer, what happened) when the pass shows the inputs blowing up."""
    where = p.first_nonfinite
    if where is not None and where.where == "forward":
        return 2, where.layer or "?", "is inf/NaN"
    if p.layers:
        first = p.layers[0]
        if not np.isnan(first.max_abs) and first.max_abs >= LARGE_ACTIVATION:
            return 1, first.name, f"reaches |value| {num(first.max_abs)}"
    return None


@check(id="step-data-unscaled", needs=("data", "passes"),
       causes=("data-unscaled",))
def data_unscaled(data: Dataset, passes: tuple[LayerPass, ...]):
    """Unscaled features that overflow a layer, or blow up the first one, on real batches."""
    best = None
    for p in passes:
        cells = feature_cells(p.batch.x, data.features, data.inputs)
        cols = _column_max(cells)
        if not cols.size or cols.max() < LARGE_INPUT:
            continue
        verdict = _verdict(p)
        if verdict is None:
            continue
        key = (verdict[0], float(cols.max()))
        if best is None or key > best[0]:
            best = (key, p, verdict, cols, cells)
    if best is None:
        return
    _, p, (strength, layer, what), cols, cells = best
    i = int(np.argmax(cols))
    column, value = cells[i][0], float(cols[i])
    b = p.batch
    if strength == 2:
        rec = p.layer(layer)
        rows = tuple(rec.nonfinite_rows) if rec is not None else ()
    else:
        col = np.abs(cells[i][1].astype(np.float64)).max(axis=1)
        order = np.argsort(-np.where(np.isfinite(col), col, 0.0), kind="stable")
        rows = tuple(int(b.rows[j]) for j in order if col[j] >= LARGE_INPUT)
    first = "" if strength == 2 else "first "
    consequence = ("the NaN reaches the loss and every weight at the first update" if strength == 2
                   else "the first gradients are as large, so the first updates overshoot and "
                        "training diverges")
    yield Finding(
        cause="data-unscaled",
        severity=Severity.ERROR,
        confidence=0.9,
        title=f"unscaled feature '{column}' (|value| up to {num(value)}) overflows layer "
              f"'{layer}'" if strength == 2 else
              f"unscaled feature '{column}' (|value| up to {num(value)}) blows up layer '{layer}'",
        evidence=(f"on batch '{b.name}' ({rows_phrase(b.rows)}) the output of {first}layer "
                  f"'{layer}' {what}; column '{column}' reaches {num(value)} there "
                  f"({rows_phrase(rows) if rows else 'no single row'}); {consequence}."),
        location=Location(kind="data", column=column, file=data.train.file,
                          rows=rows[:50] or None),
        fix=f"Scale '{column}' and the other large columns before the model sees them. "
            f"{CAUSES['data-unscaled'].fix}",
        basis="measured",
        measured={"batch": b.name, "layer": layer, "overflow": strength == 2,
                  "rows": list(rows[:50]),
                  # the static check's shape, so either finding reads the same downstream
                  "columns": [{"column": data.features[j], "file": data.train.file,
                               "absmax": float(cols[j])}
                              for j in np.argsort(-cols, kind="stable") if cols[j] >= LARGE_INPUT]},
    )
