"""What the known math calls do to a value's range, and where they are risky.

Guards recognised (the argument then counts as bounded away from the bad point):
`clip`/`clip_by_value` bounds, `maximum(x, c)`/`minimum(x, c)`, `x + c` with c > 0 (and names
like `eps`, `epsilon`, `smooth`), outputs of exp/softplus/sigmoid/softmax (> 0), abs/square/
sums of squares (>= 0, so still risky for log and sqrt until an epsilon is added), and the
"double where" (see selects.py). `log1p(x)` is the careful spelling of log(1 + x): it is a
suspect only as `log1p(-p)` or `log1p(a - b)`, where reaching -1 is likely.
"""

from __future__ import annotations

import ast
import math

from nandoc.analysis.source import names as N
from nandoc.analysis.source import selects
from nandoc.analysis.source.reader import Reader
from nandoc.analysis.source.sites import DIVISION, EXP, LOG, SQRT
from nandoc.analysis.source.values import (
    EXP_LIMIT,
    INF,
    Val,
    const,
    derive,
    div,
    exp_bounds,
    may_be_nonpositive,
    may_be_zero,
    may_overflow_exp,
    power,
)


def math_call(w: Reader, op: str, n: ast.Call) -> Val:
    pos = [w.expr(a) for a in n.args]
    kw = [(k.arg, k.value, w.expr(k.value)) for k in n.keywords]
    every = pos + [v for _, _, v in kw]

    def arg(i: int, *names: str) -> tuple[ast.expr | None, Val]:
        if i < len(n.args) and not isinstance(n.args[i], ast.Starred):
            return n.args[i], pos[i]
        for name, node, v in kw:
            if name in names:
                return node, v
        return None, Val()

    xn, x = arg(0, "x", "x1", "a", "t", "input", "tensor", "params", "value")
    if op in N.STABLE:
        return derive(every)
    if op in N.STATIC:
        return Val()
    if op in N.CONSTANT_LIKE:
        return const(N.CONSTANT_LIKE[op])
    if op in N.FILL:
        fill = arg(1, "fill_value", "value")[1].const
        return const(fill) if fill is not None else Val()
    if op in N.LOG or op in N.LOG1P:
        shifted = derive([x], x.lo + 1, x.hi + 1) if op in N.LOG1P else x
        risky = may_be_nonpositive(shifted)
        if op in N.LOG1P:  # log1p is the careful spelling; suspect only log1p(-p), log1p(a - b)
            risky = risky and (isinstance(xn, ast.UnaryOp) and isinstance(xn.op, ast.USub)
                               or isinstance(xn, ast.BinOp) and isinstance(xn.op, ast.Sub))
        lo, hi = (math.log(shifted.lo), math.log(shifted.hi) if shifted.hi != INF else INF) \
            if shifted.lo > 0 else (-INF, INF)
        return derive(every, lo, hi, w.flag(LOG, op, n, xn) if risky else None)
    if op in N.DIVIDE or op in N.RECIPROCAL:
        num, (dn, den) = (const(1.0), (xn, x)) if op in N.RECIPROCAL else (x, arg(1, "x2", "y"))
        return div(num, den, w.flag(DIVISION, op, n, dn) if may_be_zero(den) else None)
    if op in N.SQRT:
        risk = w.flag(SQRT, op, n, xn) if may_be_nonpositive(x) else None
        if op == "sqrt":
            return derive(every, math.sqrt(max(x.lo, 0.0)), math.sqrt(max(x.hi, 0.0)), risk)
        return derive(every, 0.0, INF, risk)
    if op in N.NORM:
        return derive(every, 0.0, INF, w.flag(SQRT, op, n, xn) if may_be_zero(x) else None)
    if op in N.POW:
        en, e = arg(1, "x2", "y")
        return power_op(w, n, xn, x, en, e)
    if op in N.EXP:
        risk = w.flag(EXP, op, n, xn) if may_overflow_exp(x, N.EXP[op]) else None
        scaled = derive([x], x.lo * math.log(2), x.hi * math.log(2)) if op == "exp2" else x
        lo, hi = exp_bounds(scaled)
        return derive(every, lo - 1 if op == "expm1" else lo, hi - 1 if op == "expm1" else hi,
                      risk)
    if op in N.WHERE and len(n.args) + len(kw) >= 3:
        cn = arg(0, "condition", "cond")[0]
        an, a = arg(1, "x1", "x", "then_expression")
        bn, b = arg(2, "x2", "y", "else_expression")
        return selects.where(w, n, cn, (an, a), (bn, b))
    if op in N.CLIP:
        lo = arg(1, "x_min", "clip_value_min", "min_value", "a_min")[1]
        hi = arg(2, "x_max", "clip_value_max", "max_value", "a_max")[1]
        return derive(every, max(x.lo, lo.lo), min(x.hi, hi.hi))
    if op in N.MAXIMUM or op in N.MINIMUM:
        y = arg(1, "x2", "y")[1]
        pick = max if op in N.MAXIMUM else min
        return derive(every, pick(x.lo, y.lo), pick(x.hi, y.hi))
    if op in N.RANGES:
        return derive(every, *N.RANGES[op])
    if op in N.ABS:
        lo, hi = ((x.lo, x.hi) if x.lo >= 0 else (-x.hi, -x.lo) if x.hi <= 0
                  else (0.0, max(-x.lo, x.hi)))
        return derive(every, lo, hi)
    if op in N.SQUARE:
        sq = power(x, 2)
        return derive(every, sq.lo, sq.hi)
    if op in N.SUMS:
        lo = x.lo if x.lo > 0 else 0.0 if x.lo >= 0 else -INF
        hi = x.hi if x.hi < 0 else 0.0 if x.hi <= 0 else INF
        return derive(every, lo, hi)
    if op in N.PASSTHROUGH:
        return derive(every, x.lo, x.hi)
    return derive(every)


def power_op(w: Reader, n: ast.AST, bn: ast.expr | None, b: Val, en: ast.expr | None,
             e: Val) -> Val:
    """`b ** e`: a root at 0 for 0 < e < 1, a division for e < 0, an exp for a data exponent."""
    p = e.const
    if p is not None:
        risk = None
        if 0 < p < 1 and may_be_nonpositive(b):
            risk = w.flag(SQRT, "pow", n, bn)
        elif p < 0 and may_be_zero(b):
            risk = w.flag(DIVISION, "pow", n, bn)
        return power(b, p, risk)
    base = b.const
    if base is not None and base > 1 and may_overflow_exp(e, EXP_LIMIT / math.log(base)):
        return derive((b, e), risk=w.flag(EXP, "pow", n, en))
    return derive((b, e))
