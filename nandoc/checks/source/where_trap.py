"""where-gradient-trap: a where()/switch() whose branch holds an unguarded risky op.

The forward value is finite wherever the bad branch is not selected, so the loss looks fine;
the gradient is 0 * inf = NaN there. The risky ops inside the branch are listed here and not
reported again as separate suspects.
"""

from __future__ import annotations

from collections.abc import Iterator

from nandoc.analysis.source.sites import TRAP
from nandoc.core.finding import Finding
from nandoc.core.registry import check


@check(id="source-where-trap", needs=("suspects",), causes=(TRAP,))
def where_trap(suspects: tuple[Finding, ...]) -> Iterator[Finding]:
    """where() whose unselected branch can be non-finite: finite loss, NaN gradient."""
    yield from (f for f in suspects if f.cause == TRAP)
