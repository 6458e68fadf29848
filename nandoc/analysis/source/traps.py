"""where-gradient-trap findings: a where()/switch() whose branch holds an unguarded risky op.

The forward value is finite wherever the bad branch is not selected, so the loss looks fine;
the gradient is 0 * inf = NaN there. The risky ops inside the branch are listed here and not
reported again as separate suspects.
"""

from __future__ import annotations

from collections.abc import Iterator

from nandoc.analysis.source.analysis import Analysis
from nandoc.analysis.source.rewrite import double_where
from nandoc.analysis.source.sites import DIVISION, EXP, LOG, SQRT, TRAP, Site
from nandoc.analysis.source.wording import SUSPECT_NOTE, location, measured, owner_text, quote
from nandoc.core.causes import CAUSES
from nandoc.core.finding import Finding, Severity

CONFIDENCE = 0.7
WHY = {LOG: "log of 0 is -inf", DIVISION: "a division by 0 is inf or NaN",
       SQRT: "the root's gradient is inf at 0", EXP: "exp overflows to inf"}


def trap_findings(a: Analysis) -> Iterator[Finding]:
    """One finding per where() that hides a risky op, with the double-where rewrite as fix."""
    for trap in a.traps:
        yield _finding(a, trap)


def _finding(a: Analysis, trap: Site) -> Finding:
    sides = [s for s in ("true", "false") if trap.detail["trapped"][s]]
    risky = {s: sorted((a.sites[k] for k in trap.detail["trapped"][s]), key=lambda r: r.key[1:])
             for s in sides}
    listed = "; ".join(
        f"its {side} branch `{quote(a.source(trap.detail[side]), 70)}` holds "
        + ", ".join(f"`{quote(a.source(r.node), 40)}` ({WHY[r.cause]}"
                    f"{'' if r.line == trap.line else f', line {r.line}'})" for r in rs)
        for side, rs in risky.items())
    ops = sorted({r.op for rs in risky.values() for r in rs})
    evidence = (
        f"`{quote(a.source(trap.node), 100)}` at {a.path}:{trap.line} selects between two"
        f" branches on `{quote(a.source(trap.arg), 50)}`; {listed}. where() computes both"
        f" branches everywhere: where a branch is not selected its value is dropped, but its"
        f" gradient is multiplied by 0, and 0 × inf = NaN. The loss stays finite while the"
        f" gradient, then the weights, become NaN; float64 only delays it. {SUSPECT_NOTE}"
    )
    rewrite = double_where(trap, a)
    fix = (f"{CAUSES[TRAP].fix} 1.0 is used as the harmless value here; any value at which the"
           f" branch is finite works:\n    " + rewrite.replace("\n", "\n    ")
           if rewrite else f"{CAUSES[TRAP].fix}\n    {CAUSES[TRAP].example}")
    return Finding(
        cause=TRAP,
        severity=Severity.WARNING,
        confidence=CONFIDENCE,
        title=f"where() with an unsafe branch ({', '.join(ops)}) in {owner_text(trap)}",
        evidence=evidence,
        location=location(a, trap),
        fix=fix,
        measured=measured(a, trap, cond=a.source(trap.arg), branches=sides, risky=[
            {"cause": r.cause, "op": r.op, "expr": a.source(r.node), "arg": a.source(r.arg),
             "line": r.line} for rs in risky.values() for r in rs]),
        basis="static",
    )
