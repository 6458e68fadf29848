"""Which cause an op stands for when a non-finite value is born in it, and what that op does at
the bad point. Shared by the loss probe and the custom-layer probe."""

from __future__ import annotations

from nandoc.instrument.graph_probe import OpHit

OP_CAUSE = {
    "Log": "unclipped-log", "Log1p": "unclipped-log", "Xlogy": "unclipped-log",
    "RealDiv": "division-by-zero", "Div": "division-by-zero", "Reciprocal": "division-by-zero",
    "Inv": "division-by-zero", "FloorDiv": "division-by-zero", "Xdivy": "division-by-zero",
    "Sqrt": "sqrt-at-zero", "Rsqrt": "sqrt-at-zero",
    "Exp": "exp-overflow", "Expm1": "exp-overflow", "Sinh": "exp-overflow",
    "Cosh": "exp-overflow",
    "Acos": "domain-error", "Asin": "domain-error", "Atanh": "domain-error",
    "Acosh": "domain-error", "Lgamma": "domain-error", "Digamma": "domain-error",
    "Erfinv": "domain-error", "Ndtri": "domain-error", "Betainc": "domain-error",
    "Igamma": "domain-error", "Igammac": "domain-error", "Polygamma": "domain-error",
    "Zeta": "domain-error",
}
MEANING = {
    "unclipped-log": "log(0) = -inf and its gradient 1/x is inf",
    "division-by-zero": "x/0 = inf, 0/0 = NaN, and the gradient of 1/x is -1/x², infinite at 0",
    "sqrt-at-zero": "the gradient of sqrt at 0 is 1/(2·sqrt(0)) = inf",
    "exp-overflow": "exp overflows float32 above 88.7",
    "domain-error": "outside its domain the op returns NaN, and at the edge of it (acos(±1), "
                    "atanh(±1), lgamma(0)) its gradient is infinite",
}
PYTHON_BRANCH_ERRORS = ("OperatorNotAllowedInGraphError", "truth value", "as a Python `bool`")


def cause_of(hit: OpHit) -> str | None:
    """The cause an op where a non-finite value is born stands for, if nandoc has one."""
    if hit.op_type == "Pow":
        if hit.phase == "forward":  # NaN: a fractional power of a negative number
            return "domain-error" if "nan" in hit.kinds else "exp-overflow"
        return "sqrt-at-zero"
    return OP_CAUSE.get(hit.op_type)
