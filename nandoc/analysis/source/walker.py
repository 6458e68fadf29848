"""The taint walker: one sequential pass over a function body; `if` branches and loop passes join.

Parameters are tensors ("tainted") unless they are `self`, `training`, or have a constant
non-None default. Taint flows through names, arithmetic, subscripts and calls, except into
static things (`.shape`, `.dtype`, `len(...)`, `ops.shape`, ...). Helpers defined in the same
file (top-level functions, nested defs, `self.method`) are walked with their call's arguments.
"""

from __future__ import annotations

import ast
from functools import reduce

from nandoc.analysis.source.context import FUNCS, FileContext, join_env
from nandoc.analysis.source.expressions import Expressions
from nandoc.analysis.source.sites import BRANCH, Owner, Site
from nandoc.analysis.source.values import Val, derive, join

MAX_DEPTH = 4  # helper calls followed this deep
BUDGET = 20_000  # statements walked per file before helpers are no longer followed


def param_env(ctx: FileContext, func: ast.AST, skip_first: bool, untainted: bool) -> dict:
    """The abstract values of a function's parameters when nothing is known of the caller."""
    a = func.args  # type: ignore[attr-defined]
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    pairs = list(zip(positional, defaults, strict=True))
    pairs += list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
    env: dict[str, Val] = {}
    for arg, default in pairs[1 if skip_first else 0:]:
        static = Walker(ctx, None, None, ctx.module_env).expr(default) if default else Val()
        no_tensor = default is not None and not (
            isinstance(default, ast.Constant) and default.value is None)
        env[arg.arg] = static if untainted or no_tensor or arg.arg == "training" else Val(True)
    if a.vararg:
        env[a.vararg.arg] = Val(not untainted)
    if a.kwarg:
        env[a.kwarg.arg] = Val()
    return env


class Walker(Expressions):
    """Walks one function body, recording the sites it finds in the shared FileContext."""

    def __init__(self, ctx: FileContext, func: ast.AST | None, owner: Owner | None, env: dict,
                 closure: dict | None = None, cls: ast.ClassDef | None = None,
                 stack: tuple[str, ...] = ()) -> None:
        self.ctx, self.func, self.owner, self.cls = ctx, func, owner, cls
        self.env: dict[str, Val] = dict(env)
        self.closure = closure or {}
        self.stack = stack + ((owner.function,) if owner else ())
        self.returns: list[Val] = []
        self.local_defs: dict[str, tuple[ast.AST, dict]] = {}
        self.called: set[str] = set()
        self.defs: dict[str, ast.expr] = {}  # the last expression bound to each simple name
        self.stmt: ast.stmt | None = None

    def run(self) -> Val:
        self.block(self.func.body)  # type: ignore[union-attr]
        # Nested defs never called here are returned closures (loss factories) or callbacks:
        # walk each as a unit of its own, its parameters tensors, the outer names visible.
        for name, (node, env) in self.local_defs.items():
            if name not in self.called and self.owner is not None:
                o = self.owner
                owner = Owner(f"{o.name}.{name}" if o.kind == "loss" else o.name, o.kind,
                              f"{o.function}.{name}")
                Walker(self.ctx, node, owner, param_env(self.ctx, node, False, False),
                       {**self.closure, **env}, self.cls, self.stack).run()
        return reduce(join, self.returns) if self.returns else Val()

    # ---- sites
    def flag(self, cause: str, op: str, node: ast.AST, arg: ast.AST | None,
             detail: dict | None = None) -> tuple | None:
        if self.owner is None:
            return None
        return self.ctx.add(Site(cause, op, node, arg, self.owner, self.func, self.stmt,
                                 detail or {}))

    def branch(self, construct: str, test: ast.AST, node: ast.AST) -> None:
        self.flag(BRANCH, construct, test, test, {"construct": construct, "node": node})

    # ---- statements
    def block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.ctx.steps += 1
            self.stmt = s
            self.statement(s)

    def statement(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Assign):
            if (len(s.targets) == 1 and isinstance(s.targets[0], ast.Tuple)
                    and isinstance(s.value, ast.Tuple)
                    and len(s.targets[0].elts) == len(s.value.elts)):
                values = [self.expr(e) for e in s.value.elts]
                for t, v in zip(s.targets[0].elts, values, strict=True):
                    self.bind(t, v)
                return
            v = self.expr(s.value)
            for t in s.targets:
                self.bind(t, v, s.value)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.bind(s.target, self.expr(s.value), s.value)
        elif isinstance(s, ast.AugAssign):
            load = ast.copy_location(ast.BinOp(s.target, s.op, s.value), s)
            ast.fix_missing_locations(load)
            self.bind(s.target, self.binop(load, self.expr(s.target), self.expr(s.value)))
        elif isinstance(s, ast.Expr):
            self.expr(s.value)
        elif isinstance(s, ast.Return):
            self.returns.append(self.expr(s.value) if s.value else Val())
        elif isinstance(s, ast.If):
            if self.expr(s.test).tainted:
                line = self.ctx.lines[s.lineno - 1].lstrip()
                self.branch("elif" if line.startswith("elif") else "if", s.test, s)
            self.fork(s.body, s.orelse)
        elif isinstance(s, (ast.While, ast.For, ast.AsyncFor)):
            if isinstance(s, ast.While):
                if self.expr(s.test).tainted:
                    self.branch("while", s.test, s)
            else:
                self.bind(s.target, derive([self.expr(s.iter)]))
            before = dict(self.env)
            for _ in range(2):  # a second pass sees what the first one bound
                self.block(s.body)
                self.env = join_env(before, self.env)
            self.block(s.orelse)
        elif isinstance(s, ast.Assert):
            if self.expr(s.test).tainted:
                self.branch("assert", s.test, s)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                v = self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, v)
            self.block(s.body)
        elif isinstance(s, ast.Try):
            self.block(s.body)
            for h in s.handlers:
                self.block(h.body)
            self.block(s.orelse)
            self.block(s.finalbody)
        elif isinstance(s, FUNCS):
            self.local_defs[s.name] = (s, {**self.closure, **self.env})
            self.env.pop(s.name, None)

    def fork(self, body: list[ast.stmt], orelse: list[ast.stmt]) -> None:
        before = dict(self.env)
        self.block(body)
        after = self.env
        self.env = dict(before)
        self.block(orelse)
        self.env = join_env(after, self.env)

    def bind(self, target: ast.AST, v: Val, value: ast.expr | None = None) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = v
            if value is not None:
                self.defs[target.id] = value
            else:
                self.defs.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.bind(t.value if isinstance(t, ast.Starred) else t, derive([v]))
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            name = target.value.id
            self.env[name] = join(self.env.get(name, Val()), v)

    def resolve(self, node: ast.AST) -> ast.AST:
        """Follow a name to the expression last assigned to it (a few steps)."""
        for _ in range(3):
            if isinstance(node, ast.Name) and node.id in self.defs:
                node = self.defs[node.id]
        return node

    # ---- helpers defined in the same file
    def helper_for(self, f: ast.expr) -> tuple | None:
        """(def, closure, qualified name, is_method) for a call into this file's own code."""
        if isinstance(f, ast.Name):
            if f.id in self.local_defs:
                node, env = self.local_defs[f.id]
                self.called.add(f.id)
                return node, env, f"{self.owner.function}.{f.id}" if self.owner else f.id, False
            if f.id in self.ctx.functions and f.id not in self.env:
                return self.ctx.functions[f.id], {}, f.id, False
        if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                and f.value.id == "self" and self.cls is not None):
            for m in self.cls.body:
                if isinstance(m, FUNCS) and m.name == f.attr:
                    return m, {}, f"{self.cls.name}.{m.name}", True
        return None

    def call_helper(self, n: ast.Call, node: ast.AST, closure: dict, qual: str,
                    method: bool) -> Val:
        args = self.arguments(n)
        if self.owner is None or qual in self.stack or len(self.stack) >= MAX_DEPTH:
            return derive(args)
        env = param_env(self.ctx, node, method, False)
        a = node.args  # type: ignore[attr-defined]
        names = [p.arg for p in a.posonlyargs + a.args][1 if method else 0:]
        for i, (arg, v) in enumerate(zip(n.args, args, strict=False)):
            if isinstance(arg, ast.Starred):
                break
            if i < len(names):
                env[names[i]] = v
            elif a.vararg:
                env[a.vararg.arg] = join(env[a.vararg.arg], v)
        for k, v in zip(n.keywords, args[len(n.args):], strict=True):
            if k.arg in env:
                env[k.arg] = v
        # The same helper with the same argument values gives the same result, and its sites
        # are already recorded: walk it once (files where every function calls the others
        # would otherwise take exponential time).
        key = (id(node), tuple(sorted(env.items())), id(closure) if closure else 0)
        if key not in self.ctx.memo:
            if self.ctx.steps > BUDGET:
                return derive(args)
            o = self.owner
            top_level = not method and node is self.ctx.functions.get(qual)
            owner = Owner(node.name if top_level else o.name,  # type: ignore[attr-defined]
                          o.kind, qual, via=o.function)
            cls = None if top_level else self.cls
            self.ctx.memo[key] = Walker(self.ctx, node, owner, env, closure, cls,
                                        self.stack).run()
        return self.ctx.memo[key]
