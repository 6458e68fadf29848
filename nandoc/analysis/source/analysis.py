"""Read one custom-objects file: which functions to walk, and the sites the checks report on.

Walked as units: every top-level function that no other unit calls (a function called by
another one is a helper, walked from its call sites with the caller's values), and the
`call`, `__call__` and `update_state` methods of top-level classes. A file that does not
parse gives no sites: importing it would already have failed with a clear message.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from nandoc.analysis.source.context import FUNCS, FileContext
from nandoc.analysis.source.names import ops_prefix
from nandoc.analysis.source.sites import BRANCH, SUSPECTS, TRAP, Owner, Site
from nandoc.analysis.source.walker import Walker, param_env
from nandoc.loading.custom_objects import SourceFile

METHODS = ("call", "__call__", "update_state")


@dataclass(frozen=True)
class Analysis:
    path: str
    text: str
    prefix: str  # how the file spells keras.ops, for fixes in its own style
    sites: dict[tuple, Site]
    branches: tuple[Site, ...]
    suspects: tuple[Site, ...]  # those a where-trap subsumes are left out
    traps: tuple[Site, ...]

    lines: tuple[str, ...]  # with their line ends, split as ast counts lines

    def source(self, node: ast.AST | None) -> str:
        """The code of `node` as written (ast.get_source_segment, without re-splitting the
        whole file on every call); unparsed when it has no position."""
        if node is None:
            return ""
        first, last = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if first is None or last is None or last > len(self.lines):
            return ast.unparse(node)
        start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        if first == last:
            return self.lines[first - 1].encode()[start:end].decode(errors="replace")
        head = self.lines[first - 1].encode()[start:].decode(errors="replace")
        tail = self.lines[last - 1].encode()[:end].decode(errors="replace")
        return "".join([head, *self.lines[first:last - 1], tail])


def analyse(source: SourceFile) -> Analysis | None:
    return _analyse(str(source.path), source.text)


def _analyse(path: str, text: str) -> Analysis | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    ctx = FileContext(text, tree)
    module = Walker(ctx, None, None, {})
    for s in tree.body:
        if isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            try:
                module.statement(s)
            except RecursionError:
                continue
    ctx.module_env = module.env
    for func, owner, cls in _units(ctx, tree):
        try:
            env = param_env(ctx, func, skip_first=cls is not None, untainted=_is_factory(func))
            Walker(ctx, func, owner, env, cls=cls).run()
        except RecursionError:  # an expression nested deeper than Python's stack: skip it
            continue
    return _collect(path, text, ctx)


Unit = tuple[ast.AST, Owner, "ast.ClassDef | None"]


def _units(ctx: FileContext, tree: ast.Module) -> Iterator[Unit]:
    methods = {c.name: [m for m in c.body if isinstance(m, FUNCS) and m.name in METHODS]
               for c in tree.body if isinstance(c, ast.ClassDef)}
    calls = {name: _called(f) - {name} for name, f in ctx.functions.items()}
    calls.update({name: set().union(*map(_called, ms)) for name, ms in methods.items()})
    roots = [n for n in ctx.functions if not any(n in c for c in calls.values())]
    reached = set(roots) | set(methods)
    todo = list(reached)
    while todo:
        for callee in calls.get(todo.pop(), set()) & ctx.functions.keys():
            if callee not in reached:
                reached.add(callee)
                todo.append(callee)
    roots += [n for n in ctx.functions if n not in reached]  # only reachable through a cycle
    for node in tree.body:
        if isinstance(node, FUNCS) and node.name in roots:
            yield node, Owner(node.name, "loss", node.name), None
        elif isinstance(node, ast.ClassDef):
            kind = _class_kind(node)
            for m in methods[node.name]:
                yield m, Owner(node.name, kind, f"{node.name}.{m.name}"), node


def _called(node: ast.AST) -> set[str]:
    return {c.func.id for c in ast.walk(node)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}


def _class_kind(cls: ast.ClassDef) -> str:
    bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in cls.bases]
    if any(b.endswith("Loss") for b in bases):
        return "loss"
    defined = {m.name for m in cls.body if isinstance(m, FUNCS)}
    if any("Metric" in b for b in bases) or "update_state" in defined:
        return "metric"
    return "layer"


def _is_factory(func: ast.AST) -> bool:
    """`def weighted(w): def loss(y_true, y_pred): ...; return loss`: its parameters are
    Python settings, not tensors; the nested loss is walked as a unit of its own."""
    nested = {n.name for n in func.body if isinstance(n, FUNCS)}  # type: ignore[attr-defined]
    todo = list(func.body)  # type: ignore[attr-defined]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Return) and (
                isinstance(n.value, ast.Lambda)
                or isinstance(n.value, ast.Name) and n.value.id in nested):
            return True
        if not isinstance(n, (*FUNCS, ast.ClassDef, ast.Lambda)):
            todo.extend(c for c in ast.iter_child_nodes(n) if isinstance(c, ast.stmt))
    return False


def _collect(path: str, text: str, ctx: FileContext) -> Analysis:
    sites = sorted(ctx.sites.values(), key=lambda s: s.key[1:])
    traps = [s for s in sites if s.cause == TRAP]
    subsumed = set().union(*(s.detail["trapped"]["true"] | s.detail["trapped"]["false"]
                             for s in traps))
    suspects = [s for s in sites if s.cause in SUSPECTS and s.key not in subsumed]
    branches = [s for s in sites if s.cause == BRANCH]
    return Analysis(path, text, ops_prefix(ctx.aliases), ctx.sites, tuple(branches),
                    tuple(suspects), tuple(traps), tuple(ctx.lines))

