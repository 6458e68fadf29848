"""activation-loss-mismatch, measured: a probability loss fed outputs outside [0, 1].

A built-in cross-entropy with from_logits=False reads the model's outputs as probabilities.
When the outputs of real batches leave [0, 1], they are not: Keras clips them to
[1e-7, 1 - 1e-7], so the loss is wrong and its gradient is zero wherever they were clipped (a
hand-written log of them is NaN). Seeing it happen on real samples confirms the static read of
the output activation; the finding takes the static one's place (same loss and output layer)
and supersedes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.core.evidence import num, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.layers import LayerPass
from nandoc.instrument.outputs import output_info
from nandoc.loading.model import LossInfo

PROBABILITY_LOSSES = {
    "binary_crossentropy": "binary", "binarycrossentropy": "binary",
    "binary_focal_crossentropy": "binary", "binaryfocalcrossentropy": "binary",
    "categorical_crossentropy": "categorical", "categoricalcrossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "categoricalfocalcrossentropy": "categorical",
    "sparse_categorical_crossentropy": "categorical",
    "sparsecategoricalcrossentropy": "categorical",
}


def _kind(info: LossInfo) -> str | None:
    """"binary" or "categorical" for a built-in probability loss, whatever the user named it."""
    if not info.builtin or info.from_logits:
        return None
    fn = getattr(info.fn, "fn", info.fn)  # LossFunctionWrapper -> its function
    for name in (getattr(fn, "__name__", None), info.name):
        if name and name.lower() in PROBABILITY_LOSSES:
            return PROBABILITY_LOSSES[name.lower()]
    return None


def _fix(kind: str, name: str, layer: str) -> str:
    cls = "BinaryCrossentropy" if kind == "binary" else (
        "SparseCategoricalCrossentropy" if name.startswith("sparse") else "CategoricalCrossentropy")
    act = "sigmoid" if kind == "binary" else "softmax"
    return (f"Make the output and the loss agree: end layer '{layer}' linear (activation=None) "
            f"and compile with keras.losses.{cls}(from_logits=True), the most stable pair; or "
            f"give it activation='{act}' and keep {name}.")


@check(id="step-activation-loss-mismatch", needs=("model", "loss", "passes"),
       causes=("activation-loss-mismatch",))
def activation_loss_mismatch(model: Any, loss: list[LossInfo], passes: tuple[LayerPass, ...]):
    """A probability loss (from_logits=False) whose real model outputs leave [0, 1]."""
    if len(list(getattr(model, "outputs", None) or [])) != 1:
        return
    infos = [(li, _kind(li)) for li in loss]
    infos = [(li, k) for li, k in infos if k is not None]
    if not infos:
        return
    info, kind = infos[0]
    out = output_info(model)
    if kind == "categorical" and out is not None and out.width == 1:
        return  # one class: a shape problem (softmax-single-unit's), not this one
    passes = tuple(p for p in passes if p.y_pred is not None)
    outside: dict[int, bool] = {}  # file row -> an output left [0, 1]
    lo, hi = np.inf, -np.inf
    worst = None
    for p in passes:
        y = p.y_pred.reshape(len(p.batch.rows), -1).astype(np.float64)
        fin = np.isfinite(y)
        if fin.any():
            lo, hi = min(lo, float(y[fin].min())), max(hi, float(y[fin].max()))
        bad = ((y < 0) | (y > 1)) & fin
        per_sample = bad.any(axis=1)
        for row, flag in zip(p.batch.rows.tolist(), per_sample.tolist(), strict=True):
            outside[row] = outside.get(row, False) or flag
        if per_sample.any() and (worst is None or per_sample.sum() > worst[1].sum()):
            worst = (p, per_sample)
    n_bad = sum(outside.values())
    if worst is None or n_bad == 0:
        return
    p, per_sample = worst
    layer = out.layer if out is not None else p.layers[-1].name
    activation = out.activation if out is not None else "unknown"
    bad_rows = tuple(int(r) for r in p.batch.rows[per_sample])
    yield Finding(
        cause="activation-loss-mismatch",
        severity=Severity.ERROR,
        confidence=0.95,
        title=f"{info.name} (from_logits=False) gets outputs outside [0, 1] from layer "
              f"'{layer}' ({activation})",
        evidence=(f"the model's outputs on real batches range over [{num(lo)}, {num(hi)}]; "
                  f"{n_bad} of {len(outside)} samples ({n_bad / len(outside):.0%}) leave [0, 1] "
                  f"(batch '{p.batch.name}': {rows_phrase(bad_rows)}). {info.name} reads them as "
                  f"probabilities and clips them to [1e-7, 1 - 1e-7]: the loss is wrong and its "
                  f"gradient is zero wherever they were clipped."),
        location=Location(kind="loss", name=info.name, layer=layer),
        fix=_fix(kind, info.name, layer),
        basis="measured",
        measured={"min": lo, "max": hi, "samples_outside": n_bad, "samples": len(outside),
                  "batch": p.batch.name, "rows": list(bad_rows[:50])},
    )
