"""float16-overflow: float16 layer outputs past 65504, or within 10x of it, on real batches.

Under the mixed_float16 policy layers compute in float16, whose largest value is 65504. A
forward value above it is inf, and loss scaling cannot help: it only scales gradients. Values
within 10x of the limit overflow as soon as training grows the weights a little. A gradient
that overflows in a float16 layer while the forward values are finite is the case loss scaling
exists for; a reloaded mixed_float16 model has lost its LossScaleOptimizer.
"""

from __future__ import annotations

import math
from typing import Any

from nandoc.core.causes import CAUSES
from nandoc.core.evidence import num, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.layers import FLOAT16_MAX, LayerPass, LayerRecord

MIN_HEADROOM = 10.0


def _loss_scaled(model: Any) -> bool | None:
    """Whether training would scale the loss: None when the model has no optimizer."""
    import keras

    opt = getattr(model, "optimizer", None)
    if opt is None:
        return None
    return isinstance(opt, keras.optimizers.LossScaleOptimizer)


def _scaling_phrase(model: Any, scaled: bool | None) -> str:
    if scaled is None:
        return "the model was saved without an optimizer, so nothing says training scales the loss"
    if scaled:
        return "the optimizer is a LossScaleOptimizer, which scales gradients, not activations"
    name = type(model.optimizer).__name__
    return (f"the optimizer is a plain {name}, not a LossScaleOptimizer: a mixed_float16 model "
            f"reloaded from a file has lost its loss scaling, so its float16 gradients overflow "
            f"and underflow too")


def _candidates(p: LayerPass) -> list[tuple[int, str, LayerRecord]]:
    """(rank, kind, layer): 0 forward inf, 1 gradient inf, 2 close to the limit."""
    out = []
    where = p.first_nonfinite
    for rec in p.layers:
        if rec.fp16_headroom is None:
            continue
        if rec.max_abs == float("inf") and rec.inputs_finite:
            out.append((0, "forward", rec))
        elif rec.finite and rec.fp16_headroom < MIN_HEADROOM:
            out.append((2, "close", rec))
    if where is not None and where.where == "backward" and where.layer is not None:
        rec = p.layer(where.layer)
        if rec is not None and rec.fp16_headroom is not None:
            out.append((1, "backward", rec))
    return out


def _plain(x: float | None) -> float | str | None:
    """JSON has no inf: say it in words."""
    return x if x is None or math.isfinite(x) else str(x)


@check(id="step-float16-overflow", needs=("model", "passes"),
       causes=("float16-overflow",))
def float16_overflow(model: Any, passes: tuple[LayerPass, ...]):
    """Float16 layer outputs that overflow 65504, or come within 10x of it, on real batches."""
    found = [(rank, kind, rec, p) for p in passes for rank, kind, rec in _candidates(p)]
    if not found:
        return
    order = {rec.name: i for p in passes for i, rec in enumerate(p.layers)}
    found.sort(key=lambda c: (c[0], order.get(c[2].name, 0),
                              c[2].fp16_headroom or 0.0, -len(c[2].nonfinite_rows)))
    rank, kind, rec, p = found[0]
    scaled = _loss_scaled(model)
    batch = f"batch '{p.batch.name}' ({rows_phrase(p.batch.rows)})"
    layer = f"float16 layer '{rec.name}' ({rec.class_name})"
    cast = (f"keep layer '{rec.name}' and the layers after it in float32 (dtype='float32' on "
            f"them, the output layer at least), scale the inputs so activations stay far below "
            f"65504, or train in float32 (keras.mixed_precision.set_global_policy('float32'))")
    wrap = ("" if scaled else "; and wrap the optimizer: "
            "keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())")
    if kind == "forward":
        severity, confidence = Severity.ERROR, 0.9
        title = f"float16 overflow: the output of layer '{rec.name}' is inf"
        seen = (f"on {batch} the output of {layer} overflows to inf in "
                f"{rows_phrase(rec.nonfinite_rows)} ({1 - rec.finite_fraction:.0%} of its values) "
                f"from finite inputs; float16 stops at {num(FLOAT16_MAX)}")
        fix = f"Loss scaling cannot fix a forward overflow: {cast}{wrap}."
    elif kind == "backward":
        severity, confidence = Severity.ERROR, 0.8
        title = f"float16 overflow: the gradient at layer '{rec.name}' is inf"
        seen = (f"on {batch} the forward values of {layer} are finite (max |value| "
                f"{num(rec.max_abs)}) but the gradient overflows float16 there")
        fix = CAUSES["float16-overflow"].fix
    else:
        severity, confidence = Severity.WARNING, 0.6
        title = (f"float16 near overflow: layer '{rec.name}' reaches {num(rec.max_abs)}, "
                 f"{rec.fp16_headroom:.1f}x below 65504")
        seen = (f"on {batch} the output of {layer} reaches |value| {num(rec.max_abs)}, only "
                f"{rec.fp16_headroom:.1f}x below float16's {num(FLOAT16_MAX)}; a little weight "
                f"growth in training takes it to inf")
        fix = f"Give the layer room: {cast}{wrap}."
    rows = rec.nonfinite_rows if kind == "forward" else None
    yield Finding(
        cause="float16-overflow",
        severity=severity,
        confidence=confidence,
        title=title,
        evidence=f"{seen}; {_scaling_phrase(model, scaled)}.",
        location=Location(kind="layer", layer=rec.name, rows=rows or None),
        fix=fix,
        basis="measured",
        measured={"layer": rec.name, "batch": p.batch.name, "max_abs": _plain(rec.max_abs),
                  "headroom": _plain(rec.fp16_headroom), "kind": kind, "loss_scaled": scaled,
                  "rows": list(rows or p.batch.rows[:20].tolist())},
    )
