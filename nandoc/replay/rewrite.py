"""The double-where rewrite, applied to the user's own source in memory, to verify it.

`where(cond, safe, unsafe)` becomes `where(cond, safe, unsafe')`, where every name that the
condition and the unsafe branch share is replaced in the unsafe branch by
`where(cond, 1.0, name)`: the branch then never sees the values at which it is not selected.
The rewritten module is executed in a fresh namespace (the file was named by the user as
custom_objects, so running it is already allowed); the user's file is never written.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

SAFE_VALUE = 1.0


def _is_where(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or len(node.args) != 3:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in ("where", "switch", "select")


def _data_names(expr: ast.AST) -> set[str]:
    """Names that hold values: not a module or object an attribute is read from, not a callee."""
    structural = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            structural.add(id(node.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            structural.add(id(node.func))
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and id(n) not in structural}


class _Guard(ast.NodeTransformer):
    def __init__(self, where: ast.Call, names: set[str], unsafe_is_false: bool):
        self.where, self.names, self.false = where, names, unsafe_is_false

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return node  # `ops.exp`: never guard the object an attribute is read from

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        return node  # the callee stays as written

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.names or not isinstance(node.ctx, ast.Load):
            return node
        cond = copy.deepcopy(self.where.args[0])
        safe = ast.Constant(SAFE_VALUE)
        args = [cond, safe, node] if self.false else [cond, node, safe]
        return ast.Call(func=copy.deepcopy(self.where.func), args=args, keywords=[])


class _Rewrite(ast.NodeTransformer):
    def __init__(self, line: int, branch: str):
        self.line, self.branch, self.done = line, branch, False

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if self.done or node.lineno != self.line or not _is_where(node):
            return node
        cond, a, b = node.args
        names = _data_names(cond)
        unsafe_is_false = self.branch == "false"
        target = b if unsafe_is_false else a
        guarded = _Guard(node, names, unsafe_is_false).visit(copy.deepcopy(target))
        node.args = [cond, a, guarded] if unsafe_is_false else [cond, guarded, b]
        self.done = True
        return node


def double_where(path: str | Path, line: int, branch: str = "false") -> dict[str, Any] | None:
    """Execute the module at `path` with the where() at `line` rewritten; its namespace."""
    path = Path(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rewriter = _Rewrite(line, branch)
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    if not rewriter.done:
        return None
    namespace: dict[str, Any] = {"__name__": f"nandoc_fix_{path.stem}", "__file__": str(path)}
    exec(compile(tree, str(path), "exec"), namespace)  # noqa: S102 - the user named this file
    return namespace
