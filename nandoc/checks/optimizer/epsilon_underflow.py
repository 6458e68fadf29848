"""An optimizer whose epsilon rounds to 0 in the weights' float16: Adam-style updates divide
m by sqrt(v) + epsilon, and a weight whose gradients have all been 0 so far (a dead ReLU unit,
an unused embedding row) then gets 0 / 0 = NaN at its update, while the logged loss stays
finite."""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check

CAUSE = "division-by-zero"
LOW_PRECISION = {"float16": np.float16}


def _low_precision_weights(model: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in getattr(model, "trainable_variables", []):
        name = str(getattr(v, "dtype", ""))
        if name in LOW_PRECISION:
            counts[name] = counts.get(name, 0) + 1
    return counts


@check(id="optimizer-epsilon-underflow", needs=("model",), causes=(CAUSE,))
def epsilon_underflow(model: Any):
    """An optimizer epsilon that is 0 in the precision of the weights it updates."""
    opt = getattr(model, "optimizer", None)
    epsilon = getattr(opt, "epsilon", None)
    if opt is None or not isinstance(epsilon, (int, float)) or epsilon <= 0:
        return
    for dtype, n in _low_precision_weights(model).items():
        if LOW_PRECISION[dtype](epsilon) != 0:
            continue
        tiny = float(np.finfo(LOW_PRECISION[dtype]).smallest_subnormal)
        name = type(opt).__name__
        yield Finding(
            cause=CAUSE, severity=Severity.ERROR, confidence=0.8,
            title=f"{name}'s epsilon {epsilon:g} is 0 in {dtype}: 0/0 in the update",
            evidence=(f"{n} trainable variable(s) are {dtype}, and {name} divides by "
                      f"sqrt(v) + epsilon in their dtype: epsilon = {epsilon:g} rounds to 0 "
                      f"there (the smallest {dtype} is {tiny:.2g}). A weight whose gradients "
                      f"have all been 0 so far has m = v = 0, and its update is 0/0 = NaN, "
                      f"while the logged loss can stay finite."),
            location=Location(kind="optimizer", name=name),
            fix=(f"Keep the weights in float32 with the mixed_float16 policy (float16 compute, "
                 f"float32 variables), or raise epsilon to 1e-4 or more for {dtype} weights."),
            measured={"epsilon": float(epsilon), "dtype": dtype, "variables": n},
        )
