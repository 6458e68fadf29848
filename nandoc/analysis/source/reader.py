"""What the call and select rules need from the walker, as a Protocol they import instead of it.

The walker evaluates expressions with those rules (walker -> expressions -> calls -> selects);
they are handed the walker as an argument and see it only through `Reader`, so the imports
run one way.
"""

from __future__ import annotations

import ast
from typing import Protocol

from nandoc.analysis.source.context import FileContext
from nandoc.analysis.source.values import Val


class Reader(Protocol):
    """The walker as the call and select rules see it (walker.Walker is one)."""

    ctx: FileContext
    func: ast.AST | None  # the function being walked
    defs: dict[str, ast.expr]  # the last expression bound to each simple name

    def expr(self, node: ast.AST | None) -> Val:
        """The abstract value of an expression, recording the sites it holds."""
        ...

    def flag(self, cause: str, op: str, node: ast.AST, arg: ast.AST | None,
             detail: dict | None = None) -> tuple | None:
        """Record a site; its key, or None outside a walked function."""
        ...

    def resolve(self, node: ast.AST) -> ast.AST:
        """Follow a name to the expression last assigned to it."""
        ...
