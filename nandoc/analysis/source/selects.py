"""where()/switch(): the gradient trap, and the "double where" that guards a value.

A risk (an unguarded log, division, root or exp) carried by one branch only is a trap when
this where() is what hides it: the op is written inside the branch, or the condition tests a
variable the op's argument is made of. `where(cond, positive constant, x)` whose condition
tests x (and, when it can be evaluated at x = 0, selects the constant there) is the user's
guard: the result is trusted by every risky-op rule.
"""

from __future__ import annotations

import ast
from dataclasses import replace

from nandoc.analysis.source import names as N
from nandoc.analysis.source.reader import Reader
from nandoc.analysis.source.sites import TRAP
from nandoc.analysis.source.values import Val, join

COMPARE_FUNCS = {"less": ast.Lt, "less_equal": ast.LtE, "greater": ast.Gt,
                 "greater_equal": ast.GtE, "equal": ast.Eq, "not_equal": ast.NotEq}
_AT_ZERO = {ast.Lt: lambda k: 0 < k, ast.LtE: lambda k: 0 <= k, ast.Gt: lambda k: 0 > k,
            ast.GtE: lambda k: 0 >= k, ast.Eq: lambda k: k == 0, ast.NotEq: lambda k: k != 0}
_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq,
         ast.NotEq: ast.NotEq}


def where(w: Reader, n: ast.Call, cn: ast.expr | None, true: tuple, false: tuple) -> Val:
    """A select. A risk carried by one branch only is a gradient trap: where that branch is
    not selected, its inf/NaN still meets the zero gradient where() sends it (0 * inf = NaN)."""
    (an, a), (bn, b) = true, false
    # The same op on the same argument in both branches (`n / (x - 1)` twice) is no trap: the
    # forward value shows its inf whichever branch is selected.
    sig_a, sig_b = _signatures(w, a.risks), _signatures(w, b.risks)
    only_true = {k for k in a.risks - b.risks if _masked(w, k, an, cn)
                 and _signature(w, k) not in sig_b}
    only_false = {k for k in b.risks - a.risks if _masked(w, k, bn, cn)
                  and _signature(w, k) not in sig_a}
    if only_true or only_false:
        w.flag(TRAP, "where", n, cn, {"cond": cn, "true": an, "false": bn,
                                      "trapped": {"true": only_true, "false": only_false}})
    out = replace(join(a, b), risks=(a.risks | b.risks) - only_true - only_false)
    for (_, k), (xn, x), side in (((an, a), (bn, b), True), ((bn, b), (an, a), False)):
        if not k.tainted and k.lo > 0 and x.tainted and guards_zero(w, cn, xn, side):
            return replace(out, trusted=True)
    return out


def _signature(w: Reader, key: tuple) -> tuple:
    site = w.ctx.sites.get(key)
    return (key[0], ast.dump(site.arg) if site is not None and site.arg is not None else key)


def _signatures(w: Reader, keys: frozenset) -> set[tuple]:
    return {_signature(w, k) for k in keys}


def _masked(w: Reader, key: tuple, branch: ast.expr | None, cond: ast.expr | None) -> bool:
    """Is this where() the one hiding the risky op? Yes when the op is written inside the
    branch, or when the condition tests a variable the op's argument is made of
    (`nll = -log(p)` ... `where(p > 0, nll, 0)`). A risk that merely flows through an
    unrelated select stays a plain suspect."""
    site = w.ctx.sites.get(key)
    if site is None or branch is None or cond is None:
        return False
    if site.func is w.func and _inside(site.node, branch):
        return True
    tested = set(N.data_names(w.resolve(cond)))
    used = set(N.data_names(site.arg))
    if site.func is w.func:
        used |= {m for u in list(used) if u in w.defs for m in N.data_names(w.defs[u])}
    return bool(tested & used)


def _inside(node: ast.AST, outer: ast.AST) -> bool:
    def span(x: ast.AST) -> tuple:
        return ((x.lineno, x.col_offset),  # type: ignore[attr-defined]
                (x.end_lineno, x.end_col_offset))  # type: ignore[attr-defined]
    (a0, a1), (b0, b1) = span(node), span(outer)
    return b0 <= a0 and a1 <= b1


def guards_zero(w: Reader, cond: ast.expr | None, x: ast.expr | None, const_when: bool) -> bool:
    """Does `cond` select the constant branch where `x` is 0? `x < k`, `abs(x) < k`,
    `ops.less(x, k)` (also through a name assigned from one of them) are evaluated at x = 0;
    a condition on x that cannot be evaluated (`x >= rcond * s[0]`) is taken as the author's
    guard. `x` may be a function of one variable only (`c * v ** 2` is 0 where v is)."""
    cond = w.resolve(cond) if cond is not None else None
    x_names = N.data_names(x)
    if cond is None or x is None or not set(x_names) & set(N.data_names(cond)):
        return False
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1:
        left, op, right = cond.left, type(cond.ops[0]), cond.comparators[0]
    elif (isinstance(cond, ast.Call) and len(cond.args) == 2
          and N.math_op(cond.func, w.ctx.aliases) in COMPARE_FUNCS):
        left, right = cond.args
        op = COMPARE_FUNCS[N.math_op(cond.func, w.ctx.aliases)]  # type: ignore[index]
    else:
        return True
    k = w.expr(right).const
    if k is None:
        left, right, op = right, left, _FLIP[op]
        k = w.expr(right).const
    if k is None:
        return True
    if isinstance(left, ast.Call) and len(left.args) == 1 and (
            N.math_op(left.func, w.ctx.aliases) in N.ABS
            or isinstance(left.func, ast.Name) and left.func.id == "abs"):
        left = left.args[0]
    same = ast.dump(left) == ast.dump(x) or (
        isinstance(left, ast.Name) and x_names == [left.id])
    return same and _AT_ZERO[op](k) == const_when
