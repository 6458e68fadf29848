"""unsafe-math findings, suspects read from the code: log, division, root and exp of tensors
nothing keeps in range.

Each is a WARNING with middling confidence: the code allows the bad value, the data may never
produce it. `measured` carries the function, expression and argument for a later stage to
evaluate with real values. Ops inside a where() branch are reported by the where-trap check.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from nandoc.analysis.source.analysis import Analysis
from nandoc.analysis.source.rewrite import splice
from nandoc.analysis.source.sites import DIVISION, EXP, LOG, SQRT, Site
from nandoc.analysis.source.wording import (
    SUSPECT_NOTE,
    location,
    measured,
    owner_text,
    per_line,
    quote,
)
from nandoc.core.finding import Finding, Severity

PROBABILITY = re.compile(r"pred|prob|^p$|^q$|sigm|softmax", re.IGNORECASE)
CONFIDENCE = {LOG: 0.6, DIVISION: 0.55, SQRT: 0.5, EXP: 0.5}
BAD_POINT = {
    LOG: "log(0) = -inf and its gradient 1/x is inf; the log of a negative value is NaN. One"
         " prediction at exactly 0 (a saturated sigmoid or softmax gives one) makes the loss"
         " -inf and the next update NaN.",
    DIVISION: "x / 0 = ±inf and 0 / 0 = NaN, and the gradient of 1/x, -1/x², is infinite at 0.",
    SQRT: "The value at 0 is finite, but d sqrt(x)/dx = 1/(2 sqrt(x)) is inf there and the"
          " backward pass turns it into NaN; a negative argument is NaN already going forward.",
    EXP: "float32 exp overflows to inf above x ≈ 88.7 (float16 above ≈ 11); the inf then meets"
         " a subtraction or a zero and becomes NaN.",
}
MISSING = {LOG: "keeps it away from 0 (no clip, maximum or + epsilon)",
           DIVISION: "keeps it away from 0 (no + epsilon, maximum or guard)",
           SQRT: "adds an epsilon, so it can be exactly 0",
           EXP: "bounds it from above (no minimum or clip)"}


def unsafe_findings(a: Analysis) -> Iterator[Finding]:
    """One finding per line with unguarded risky ops (those inside a where-trap are left out)."""
    for group in per_line(a.suspects):
        yield _finding(a, group)


def _finding(a: Analysis, group: list[Site]) -> Finding:
    site = group[0]
    arg, expr = a.source(site.arg), a.source(site.node)
    missing, bad = MISSING[site.cause], BAD_POINT[site.cause]
    if site.op == "log1p":
        missing = "keeps it above -1 (no clip or maximum)"
        bad = "log1p(-1) = log(0) = -inf and its gradient is inf; below -1 it is NaN."
    evidence = (f"`{quote(expr, 80)}` at {a.path}:{site.line} {_verb(site)} `{quote(arg, 60)}`,"
                f" and nothing in {owner_text(site)} {missing}. {bad}")
    if len(group) > 1:
        others = ", ".join(f"`{quote(a.source(s.node), 50)}`" for s in group[1:])
        evidence += f" The same line also has {others}."
    return Finding(
        cause=site.cause,
        severity=Severity.WARNING,
        confidence=CONFIDENCE[site.cause],
        title=f"{_what(site, quote(arg, 40))} in {owner_text(site)}",
        evidence=f"{evidence} {SUSPECT_NOTE}",
        location=location(a, site),
        fix=_fix(a, site),
        measured=measured(a, site, args=[a.source(s.arg) for s in group]),
        basis="static",
    )


def _verb(site: Site) -> str:
    if site.cause == LOG:
        return f"takes the {site.op} of"
    if site.cause == DIVISION:
        return "raises to a negative power" if site.op == "pow" else "divides by"
    if site.cause == SQRT:
        return {"pow": "takes a fractional power of", "norm": "takes the norm of",
                "rsqrt": "takes the reciprocal root of"}.get(site.op, "takes the square root of")
    return "raises to the power" if site.op == "pow" else f"applies {site.op} to"


def _what(site: Site, arg: str) -> str:
    if site.cause == LOG:
        return f"{site.op}() of {arg} without clipping"
    if site.cause == DIVISION:
        return f"division by {arg} without a guard"
    if site.cause == SQRT:
        op = "fractional power" if site.op == "pow" else f"{site.op}()"
        return f"{op} of {arg} without an epsilon"
    op = "power with exponent" if site.op == "pow" else f"{site.op}() of"
    return f"{op} {arg} without an upper bound"


def _fix(a: Analysis, site: Site) -> str:
    p, arg = a.prefix, a.source(site.arg)
    node, target = site.node, site.arg
    if target is None:
        return "Guard the argument before this op."
    if site.cause == LOG:
        var = _probability_name(target)
        if var and site.op in ("log", "log2", "log10"):
            return (f"Clip before the log (this keeps both log({var}) and log(1 - {var})"
                    f" finite):\n    {var} = {p}.clip({var}, 1e-7, 1 - 1e-7)\nor use a built-in"
                    f" loss such as keras.losses.BinaryCrossentropy, which clips for you.")
        bound = "-1 + 1e-7" if site.op == "log1p" else "1e-7"
        guarded = splice(node, target, f"{p}.maximum({arg}, {bound})")
        return f"Keep the argument positive:\n    {guarded}"
    if site.cause == DIVISION:
        guarded = splice(node, target, f"{arg} + 1e-7")
        return (f"Guard the denominator; when it cannot be negative:\n    {guarded}\n"
                f"otherwise keep its sign and move it away from 0 first:\n"
                f"    den = {p}.where({p}.abs({arg}) < 1e-7, 1e-7, {arg})\n"
                f"or use {p}.divide_no_nan(num, den) where 0 / 0 should give 0.")
    if site.cause == SQRT:
        if site.op == "norm":
            return (f"Compute the norm with an epsilon inside the root:\n    {p}.sqrt({p}.sum("
                    f"{p}.square({arg}), axis=-1) + 1e-12)")
        return f"Add a small epsilon inside the root:\n    {splice(node, target, f'{arg} + 1e-12')}"
    bounded = splice(node, target, f"{p}.minimum({arg}, 80.0)")
    return (f"Bound the exponent:\n    {bounded}\nor use a stable form ({p}.softplus,"
            f" {p}.logsumexp, {p}.log_sigmoid) instead of exp by hand.")


def _probability_name(arg: ast.AST) -> str | None:
    """`y_pred` in log(y_pred) or log(1 - y_pred): a probability, which a clip protects."""
    if isinstance(arg, ast.Name) and PROBABILITY.search(arg.id):
        return arg.id
    if (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub)
            and isinstance(arg.left, ast.Constant) and arg.left.value == 1
            and isinstance(arg.right, ast.Name)):
        return arg.right.id
    return None
