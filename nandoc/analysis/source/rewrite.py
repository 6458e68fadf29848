"""Fixes written from the user's own code: `if` -> `where`, guarded arguments, the double where.

The double where is written as fix text (`double_where`) and applied to the user's module in
memory to verify it (`double_where_namespace`); both recognise the select and the names its
condition reads with the same `is_where` and `data_names`.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

from nandoc.analysis.source.analysis import Analysis
from nandoc.analysis.source.names import data_names, is_where
from nandoc.analysis.source.sites import Site

HOLE = "__nandoc_hole__"
SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)  # one-line statements


def _same(a: ast.AST, b: ast.AST) -> bool:
    pos = ("lineno", "col_offset", "end_lineno", "end_col_offset")
    return type(a) is type(b) and all(getattr(a, p, None) == getattr(b, p, None) for p in pos)


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.AST) -> None:
        self.target, self.new, self.parent_is_op = target, new, False

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field, value in ast.iter_fields(node):
            items = value if isinstance(value, list) else [value]
            for i, child in enumerate(items):
                if isinstance(child, ast.AST) and _same(child, self.target):
                    self.parent_is_op = isinstance(node, (ast.BinOp, ast.UnaryOp))
                    if isinstance(value, list):
                        value[i] = self.new
                    else:
                        setattr(node, field, self.new)
                elif isinstance(child, ast.AST):
                    self.visit(child)
        return node


def splice(node: ast.AST, target: ast.AST, text: str) -> str:
    """`node` unparsed with its sub-expression `target` replaced by `text`."""
    if _same(node, target):
        return text
    tool = _Replace(target, ast.Name(HOLE, ast.Load()))
    out = ast.unparse(tool.visit(copy.deepcopy(node)))
    return out.replace(HOLE, f"({text})" if tool.parent_is_op and " " in text else text)


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.names:
            return ast.copy_location(ast.Name(self.names[node.id], ast.Load()), node)
        return node


def rename(node: ast.AST, names: dict[str, str]) -> ast.AST:
    return _Rename(names).visit(copy.deepcopy(node))


COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def tensor_condition(node: ast.AST, a: Analysis) -> str:
    """A Python condition spelled with tensor ops: `and` -> logical_and, `not` -> logical_not,
    `a < x < b` -> logical_and(a < x, x < b)."""
    p = a.prefix
    if isinstance(node, ast.BoolOp):
        fn = f"{p}.logical_and" if isinstance(node.op, ast.And) else f"{p}.logical_or"
        parts = [tensor_condition(v, a) for v in node.values]
        out = parts[-1]
        for part in reversed(parts[:-1]):
            out = f"{fn}({part}, {out})"
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return f"{p}.logical_not({tensor_condition(node.operand, a)})"
    if isinstance(node, ast.Compare) and len(node.ops) > 1:
        left = [node.left] + node.comparators[:-1]
        pairs = [f"{a.source(x)} {COMPARE[type(o)]} {a.source(y)}"
                 for x, o, y in zip(left, node.ops, node.comparators, strict=True)]
        return f"{p}.logical_and({', '.join(pairs)})"
    return a.source(node)


def branch_to_where(site: Site, a: Analysis) -> str | None:
    """`if c: v = X else: v = Y` -> `v = where(c, X, Y)`; likewise for returns and ternaries."""
    node, w = site.detail["node"], f"{a.prefix}.where"
    test = tensor_condition(site.arg, a) if site.arg is not None else ""
    if isinstance(node, ast.IfExp):
        return f"{w}({test}, {a.source(node.body)}, {a.source(node.orelse)})"
    if not isinstance(node, ast.If):
        return None
    orelse = node.orelse or _next_return(site.func, node)
    if (len(node.body) == 1 and len(orelse) == 1 and isinstance(node.body[0], ast.Return)
            and isinstance(orelse[0], ast.Return) and node.body[0].value and orelse[0].value):
        return f"return {w}({test}, {a.source(node.body[0].value)}, {a.source(orelse[0].value)})"
    then, other = _assigns(node.body), _assigns(node.orelse)
    if then and other is not None and (not node.orelse or then.keys() == other.keys()):
        return "\n".join(f"{v} = {w}({test}, {a.source(x)}, "
                         f"{a.source(other[v]) if v in other else v})" for v, x in then.items())
    return None


def _assigns(body: list[ast.stmt]) -> dict[str, ast.expr] | None:
    out: dict[str, ast.expr] = {}
    for s in body:
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name)) or s.targets[0].id in out:
            return None
        out[s.targets[0].id] = s.value
    return out


def _next_return(func: ast.AST, stmt: ast.stmt) -> list[ast.stmt]:
    for parent in ast.walk(func):
        for _, body in ast.iter_fields(parent):
            if isinstance(body, list) and stmt in body:
                i = body.index(stmt)
                nxt = body[i + 1] if i + 1 < len(body) else None
                return [nxt] if isinstance(nxt, ast.Return) and not stmt.orelse else []
    return []


def double_where(trap: Site, a: Analysis) -> str | None:
    """The trap's where rewritten so that its unsafe branch never sees the bad input."""
    call, cond = trap.node, trap.detail["cond"]
    if not is_where(call) or cond is None:
        return None
    w = ast.unparse(call.func)  # type: ignore[attr-defined]
    if isinstance(cond, ast.Name):
        name, lines = cond.id, []
    else:
        small = isinstance(cond, ast.Compare) and isinstance(cond.ops[0], (ast.Lt, ast.LtE))
        name = "small" if small else "cond"
        lines = [f"{name} = {a.source(cond)}"]
    both = all(trap.detail["trapped"][s] for s in ("true", "false"))
    new_call = _Replace(cond, ast.Name(name, ast.Load())).visit(copy.deepcopy(call))
    statements: dict[int, str] = {}
    for side in ("true", "false"):
        sites = [a.sites[k] for k in sorted(trap.detail["trapped"][side], key=lambda k: k[1:])]
        names = [n for s in sites for n in data_names(s.arg)]
        names = list(dict.fromkeys(names))
        if not names:
            continue
        suffix = f"_safe_{side[0]}" if both else "_safe"
        mapping = {n: n + suffix for n in names}
        for n in names:  # the harmless value goes where this branch is not selected
            pair = f"{n}, 1.0" if side == "true" else f"1.0, {n}"
            lines.append(f"{n}{suffix} = {w}({name}, {pair})"
                         "   # a harmless value where the branch is not selected")
        for s in sites:
            if (s.func is trap.func and isinstance(s.stmt, SIMPLE)
                    and s.stmt is not trap.stmt):
                statements[s.stmt.lineno] = ast.unparse(rename(s.stmt, mapping))
        branch = trap.detail[side]
        if branch is not None:
            new_call = _Replace(branch, rename(branch, mapping)).visit(new_call)
    if len(lines) == (0 if isinstance(cond, ast.Name) else 1):
        return None
    return "\n".join(lines + [statements[k] for k in sorted(statements)]
                     + [ast.unparse(new_call)])


# ---- the double where applied to the user's module, to verify the fix by re-training
SAFE_VALUE = 1.0


class _Guard(ast.NodeTransformer):
    """Every name the condition reads, where the unsafe branch reads it as a value, becomes
    `where(cond, 1.0, name)`: the branch never sees the values at which it is not selected."""

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
        if self.done or node.lineno != self.line or not is_where(node):
            return node
        cond, a, b = node.args
        names = set(data_names(cond))
        unsafe_is_false = self.branch == "false"
        target = b if unsafe_is_false else a
        guarded = _Guard(node, names, unsafe_is_false).visit(copy.deepcopy(target))
        node.args = [cond, a, guarded] if unsafe_is_false else [cond, guarded, b]
        self.done = True
        return node


def double_where_namespace(path: str | Path, line: int,
                           branch: str = "false") -> dict[str, Any] | None:
    """Execute the module at `path` with the where() at `line` rewritten (its `branch` side
    guarded); the module's namespace, or None when that line holds no where() to rewrite.

    The rewritten module runs in a fresh namespace (the user named the file as custom_objects,
    so running it is already allowed); the user's file is never written.
    """
    path = Path(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rewriter = _Rewrite(line, branch)
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    if not rewriter.done:
        return None
    namespace: dict[str, Any] = {"__name__": f"nandoc_fix_{path.stem}", "__file__": str(path)}
    exec(compile(tree, str(path), "exec"), namespace)  # noqa: S102 - the user named this file
    return namespace
