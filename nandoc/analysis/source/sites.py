"""What the walker records: the places in the source where a check has something to say."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

BRANCH = "tensor-python-branch"
TRAP = "where-gradient-trap"
LOG = "unclipped-log"
DIVISION = "division-by-zero"
SQRT = "sqrt-at-zero"
EXP = "exp-overflow"
SUSPECTS = (LOG, DIVISION, SQRT, EXP)


@dataclass(frozen=True)
class Owner:
    """Whose code a site is in: the location's name and kind, and the function that holds it."""

    name: str  # the location name: a top-level function, or the class of a method
    kind: str  # loss | layer | metric
    function: str  # e.g. "where_loss", "f", "MyLayer.call", "weighted_bce.loss"
    via: str | None = None  # the function that called this helper, when reached by a call


@dataclass(eq=False)
class Site:
    """One place a check reports on.

    node: the risky op (suspects), the tested expression (branches) or the where call (traps).
    arg: the risky argument (suspects), or the condition (traps, branches).
    """

    cause: str
    op: str
    node: ast.AST
    arg: ast.AST | None
    owner: Owner
    func: ast.AST  # the FunctionDef it sits in, for rewrites
    stmt: ast.stmt | None  # the statement it sits in, for rewrites
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def line(self) -> int:
        return self.node.lineno  # type: ignore[attr-defined]

    @property
    def key(self) -> tuple:
        return site_key(self.cause, self.node)


def site_key(cause: str, node: ast.AST) -> tuple:
    return (cause, node.lineno, node.col_offset,  # type: ignore[attr-defined]
            node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
