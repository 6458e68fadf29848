"""How each kind of expression evaluates to an abstract value (the walker's expression half)."""

from __future__ import annotations

import ast
from functools import reduce
from typing import Any

from nandoc.analysis.source import calls
from nandoc.analysis.source.names import STATIC_ATTRS, STATIC_BUILTINS, looks_like_epsilon, math_op
from nandoc.analysis.source.sites import DIVISION
from nandoc.analysis.source.values import (
    Val,
    add,
    const,
    derive,
    div,
    join,
    may_be_zero,
    mul,
    neg,
    sub,
)

PREDICATE = ("is_", "has_")


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_text(e) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class Expressions:
    """Mixed into the Walker, which provides env, closure, ctx, flag(), branch(), bind() and
    the helper-call machinery."""

    env: dict[str, Val]
    closure: dict[str, Val]
    ctx: Any
    local_defs: dict[str, tuple[ast.AST, dict]]

    def expr(self, node: ast.AST | None) -> Val:
        if node is None:
            return Val()
        method = getattr(self, "e_" + type(node).__name__, None)
        if method is not None:
            return method(node)
        return derive([self.expr(c) for c in ast.iter_child_nodes(node)
                       if isinstance(c, ast.expr)])

    def e_Constant(self, n: ast.Constant) -> Val:
        return const(n.value) if isinstance(n.value, (int, float)) else Val()

    def e_Name(self, n: ast.Name) -> Val:
        for scope in (self.env, self.closure, self.ctx.module_env):
            if n.id in scope:
                v = scope[n.id]
                break
        else:
            v = Val()
        return const(1e-7) if not v.tainted and v.unknown and looks_like_epsilon(n.id) else v

    def e_Attribute(self, n: ast.Attribute) -> Val:
        if n.attr in STATIC_ATTRS or n.attr.startswith(PREDICATE):
            return Val()
        if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
            v = Val()  # layer/loss configuration; weights are not followed
        else:
            base = self.expr(n.value)
            v = derive([base], base.lo, base.hi)
        return const(1e-7) if not v.tainted and v.unknown and looks_like_epsilon(n.attr) else v

    def e_Subscript(self, n: ast.Subscript) -> Val:
        base, index = self.expr(n.value), self.expr(n.slice)
        return derive([base, index], base.lo, base.hi) if base.tainted or index.tainted else Val()

    def e_BinOp(self, n: ast.BinOp) -> Val:
        return self.binop(n, self.expr(n.left), self.expr(n.right))

    def binop(self, n: ast.BinOp, a: Val, b: Val) -> Val:
        if isinstance(n.op, ast.Add):
            return add(a, b)
        if isinstance(n.op, ast.Sub):
            return sub(a, b)
        if isinstance(n.op, ast.Mult):
            return mul(a, b)
        if isinstance(n.op, (ast.Div, ast.FloorDiv)):
            risk = self.flag(DIVISION, "divide", n, n.right) if may_be_zero(b) else None
            return div(a, b, risk)
        if isinstance(n.op, ast.Pow):
            return calls.power_op(self, n, n.left, a, n.right, b)
        return derive([a, b])

    def e_UnaryOp(self, n: ast.UnaryOp) -> Val:
        v = self.expr(n.operand)
        if isinstance(n.op, ast.USub):
            return neg(v)
        if isinstance(n.op, ast.Not):
            if v.tainted:
                self.branch("not", n, n)
            return Val(v.tainted, 0.0, 1.0)
        return v if isinstance(n.op, ast.UAdd) else derive([v])

    def e_BoolOp(self, n: ast.BoolOp) -> Val:
        vals = [self.expr(v) for v in n.values]
        if any(v.tainted for v in vals):
            self.branch("and" if isinstance(n.op, ast.And) else "or", n, n)
        return reduce(join, vals)

    def e_Compare(self, n: ast.Compare) -> Val:
        vals = [self.expr(n.left)] + [self.expr(c) for c in n.comparators]
        if all(isinstance(o, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for o in n.ops):
            return Val()  # identity and membership are Python-level: never a tensor
        if any(_is_text(c) for c in [n.left, *n.comparators]):
            return Val()  # `mode == "sum"`: a setting, not a tensor
        tainted = any(v.tainted for v in vals)
        if tainted and len(n.ops) > 1:  # a < x < b is (a < x) and (x < b)
            self.branch("chained comparison", n, n)
        return Val(tainted, 0.0, 1.0)

    def e_IfExp(self, n: ast.IfExp) -> Val:
        if self.expr(n.test).tainted:
            self.branch("conditional expression", n.test, n)
        return join(self.expr(n.body), self.expr(n.orelse))

    def e_Lambda(self, n: ast.Lambda) -> Val:
        return Val()

    def e_JoinedStr(self, n: ast.JoinedStr) -> Val:
        return Val()

    def e_NamedExpr(self, n: ast.NamedExpr) -> Val:
        v = self.expr(n.value)
        self.bind(n.target, v, n.value)
        return v

    def comprehension(self, n: ast.AST, parts: list[ast.expr]) -> Val:
        saved = dict(self.env)
        for g in n.generators:  # type: ignore[attr-defined]
            self.bind(g.target, derive([self.expr(g.iter)]))
            for cond in g.ifs:
                self.expr(cond)
        v = derive([self.expr(p) for p in parts])
        self.env = saved
        return v

    def e_ListComp(self, n: ast.ListComp) -> Val:
        return self.comprehension(n, [n.elt])

    e_SetComp = e_GeneratorExp = e_ListComp  # type: ignore[assignment]

    def e_DictComp(self, n: ast.DictComp) -> Val:
        return self.comprehension(n, [n.key, n.value])

    def e_Call(self, n: ast.Call) -> Val:
        f = n.func
        shadowed = isinstance(f, ast.Name) and (f.id in self.env or f.id in self.local_defs)
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        builtin = isinstance(f, ast.Name) and name in STATIC_BUILTINS and not shadowed
        if builtin or name.startswith(PREDICATE):
            self.arguments(n)  # is_*/has_* answer with a Python bool by convention
            return Val()
        helper = self.helper_for(f)
        if helper is not None:
            return self.call_helper(n, *helper)
        op = math_op(f, self.ctx.aliases)
        if op is None and isinstance(f, ast.Name) and f.id == "abs" and not shadowed:
            op = "abs"
        if op is not None:
            return calls.math_call(self, op, n)
        return derive(self.arguments(n) + [self.expr(f)])

    def arguments(self, n: ast.Call) -> list[Val]:
        return [self.expr(a) for a in n.args] + [self.expr(k.value) for k in n.keywords]
