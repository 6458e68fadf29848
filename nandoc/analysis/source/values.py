"""Abstract values of the static read: is it a tensor, what range, which risks it carries.

An interval is deliberately coarse: `(-inf, inf)` means "nothing known". `TINY` stands for
"positive, however small": exp, softplus and sigmoid outputs are > 0 in exact arithmetic and
only underflow to 0 for arguments below about -87, which the checks accept as safe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

INF = math.inf
TINY = 1e-38
EXP_LIMIT = 88.7  # float32 exp overflows above log(3.4e38) ≈ 88.72


@dataclass(frozen=True)
class Val:
    """One value seen by the walker.

    tainted: it is (or derives from) a tensor argument, so it holds data-dependent values.
    trusted: it derives only from `where(cond, positive constant, x)`-style selections, the
    user's own guard of the bad region (the "double where"); risky-op rules do not fire on it.
    risks: keys of unguarded risky ops this value flowed through, for the where-trap rule.
    """

    tainted: bool = False
    lo: float = -INF
    hi: float = INF
    trusted: bool = False
    risks: frozenset = frozenset()

    @property
    def const(self) -> float | None:
        return self.lo if self.lo == self.hi and not self.tainted else None

    @property
    def unknown(self) -> bool:
        return self.lo == -INF and self.hi == INF


def const(x: float) -> Val:
    try:
        return Val(lo=float(x), hi=float(x))
    except OverflowError:  # an int beyond float range: nothing useful to know
        return Val()


def derive(inputs: Iterable[Val], lo: float = -INF, hi: float = INF,
           risk: object | None = None) -> Val:
    """The result of an op on `inputs`: tainted if any is, trusted if every tainted one is."""
    ins = list(inputs)
    tainted = [v for v in ins if v.tainted]
    risks = frozenset().union(*(v.risks for v in ins)) if ins else frozenset()
    if risk is not None:
        risks = risks | {risk}
    if not lo <= hi:  # crossed clip bounds, or inf - inf = nan: know nothing
        lo, hi = -INF, INF
    return Val(tainted=bool(tainted), lo=lo, hi=hi,
               trusted=bool(tainted) and all(v.trusted for v in tainted), risks=risks)


def join(a: Val, b: Val) -> Val:
    """Either value (two branches of an `if`, a loop's first and later passes)."""
    trusted = (a.trusted or not a.tainted) and (b.trusted or not b.tainted) and (
        a.tainted or b.tainted)
    return Val(a.tainted or b.tainted, min(a.lo, b.lo), max(a.hi, b.hi), trusted,
               a.risks | b.risks)


def _mul(x: float, y: float) -> float:
    return 0.0 if x == 0 or y == 0 else x * y  # interval convention: 0 * inf = 0


def add(a: Val, b: Val) -> Val:
    lo, hi = a.lo + b.lo, a.hi + b.hi
    # `x + eps` on a value nothing is known about is taken as the author's guard of a
    # non-negative quantity (sums of squares, counts, probabilities): the usual idiom.
    for x, c in ((a, b), (b, a)):
        if x.tainted and x.unknown and c.const is not None and c.const > 0:
            lo, hi = c.const, INF
    return derive((a, b), lo, hi)


def neg(a: Val) -> Val:
    return replace(a, lo=-a.hi, hi=-a.lo)


def sub(a: Val, b: Val) -> Val:
    return derive((a, b), a.lo - b.hi, a.hi - b.lo)


def mul(a: Val, b: Val) -> Val:
    ps = [_mul(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
    return derive((a, b), min(ps), max(ps))


def excludes_zero(v: Val) -> bool:
    return v.lo > 0 or v.hi < 0


def div(a: Val, b: Val, risk: object | None = None) -> Val:
    if not excludes_zero(b):
        return derive((a, b), risk=risk)
    r = Val(lo=1 / b.hi if b.hi != INF else 0.0, hi=1 / b.lo if b.lo != -INF else 0.0)
    return derive((a, b), *_bounds(mul(a, r)), risk=risk)


def _bounds(v: Val) -> tuple[float, float]:
    return v.lo, v.hi


def _pow(x: float, p: float) -> float:
    try:
        return INF if x == INF else x**p
    except OverflowError:
        return INF


def power(base: Val, p: float, risk: object | None = None) -> Val:
    """`base ** p` for a constant p."""
    if p > 0 and p == int(p) and int(p) % 2 == 0:
        sq = sorted((_pow(abs(base.lo), p), _pow(abs(base.hi), p)))
        lo = 0.0 if base.lo <= 0 <= base.hi else sq[0]
        return derive((base,), lo, sq[1], risk=risk)
    if p > 0 and base.lo >= 0:
        return derive((base,), _pow(base.lo, p), _pow(base.hi, p), risk=risk)
    return derive((base,), risk=risk)


def exp_bounds(v: Val) -> tuple[float, float]:
    def e(x: float) -> float:
        return INF if x > 709 else max(math.exp(x), TINY)
    return e(v.lo), e(v.hi)


# What an op needs from its argument. Untainted values (constants, shapes) are always fine.
def may_be_nonpositive(v: Val) -> bool:
    """log and sqrt: bad at 0 (and below)."""
    return v.tainted and not v.trusted and v.lo <= 0


def may_be_zero(v: Val) -> bool:
    """A denominator: bad at exactly 0."""
    return v.tainted and not v.trusted and v.lo <= 0 <= v.hi


def may_overflow_exp(v: Val, limit: float = EXP_LIMIT) -> bool:
    return v.tainted and not v.trusted and v.hi > limit
