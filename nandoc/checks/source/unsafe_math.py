"""Suspects read from the code: log, division, root and exp of tensors nothing keeps in range.

Each is a WARNING with middling confidence: the code allows the bad value, the data may never
produce it. Ops inside a where() branch are reported by the where-trap check.
"""

from __future__ import annotations

from collections.abc import Iterator

from nandoc.analysis.source.sites import SUSPECTS
from nandoc.core.finding import Finding
from nandoc.core.registry import check


@check(id="source-unsafe-math", needs=("suspects",), causes=SUSPECTS)
def unsafe_math(suspects: tuple[Finding, ...]) -> Iterator[Finding]:
    """log, division, sqrt or exp of an unguarded tensor in a custom loss, layer or metric."""
    yield from (f for f in suspects if f.cause in SUSPECTS)
