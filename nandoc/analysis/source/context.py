"""What every walk over one file shares: its text, imports, top-level functions and sites."""

from __future__ import annotations

import ast
import re

from nandoc.analysis.source.names import import_aliases
from nandoc.analysis.source.sites import BRANCH, TRAP, Site
from nandoc.analysis.source.values import Val, join

FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
STATEMENTS = ("if", "elif", "while", "assert")


class FileContext:
    """The file's text, imports, top-level functions, module constants, and the sites found."""

    def __init__(self, text: str, tree: ast.Module) -> None:
        self.text = text
        self.lines = split_lines(text)
        self.aliases = import_aliases(tree)
        self.functions = {n.name: n for n in tree.body if isinstance(n, FUNCS)}
        self.module_env: dict[str, Val] = {}
        self.sites: dict[tuple, Site] = {}
        self.memo: dict[tuple, Val] = {}  # helper walks by (def, argument values, closure)
        self.steps = 0  # statements walked, against the walker's budget

    def add(self, site: Site) -> tuple:
        old = self.sites.setdefault(site.key, site)
        if old is site:
            return site.key
        if site.cause == TRAP:  # a helper walked from two call sites
            for side in ("true", "false"):
                old.detail["trapped"][side] |= site.detail["trapped"][side]
        elif site.cause == BRANCH and _rank(site) < _rank(old):  # `if not x:` beats `not x`
            self.sites[site.key] = site
        return site.key


def _rank(site: Site) -> int:
    return 0 if site.op in STATEMENTS else 1 if site.op == "conditional expression" else 2


def join_env(a: dict, b: dict) -> dict:
    return {k: join(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in a | b}


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split on \\n, \\r\\n and \\r only, as ast numbers them."""
    out, start = [], 0
    for m in re.finditer(r"\r\n|\r|\n", text):
        out.append(text[start:m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out
