"""tensor-python-branch: a Python `if`/`while`/`and`/`or`/`not` whose condition is a tensor."""

from __future__ import annotations

from collections.abc import Iterator

from nandoc.analysis.source.sites import BRANCH
from nandoc.core.finding import Finding
from nandoc.core.registry import check


@check(id="source-python-branch", needs=("suspects",), causes=(BRANCH,))
def python_branch(suspects: tuple[Finding, ...]) -> Iterator[Finding]:
    """Python if/while/and/or/not on a tensor in a custom loss, layer or metric."""
    yield from (f for f in suspects if f.cause == BRANCH)
