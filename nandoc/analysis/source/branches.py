"""tensor-python-branch findings: a Python `if`/`while`/`and`/`or`/`not` whose condition is a
tensor, with the element-wise rewrite written from the user's code."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from nandoc.analysis.source.analysis import Analysis
from nandoc.analysis.source.context import STATEMENTS
from nandoc.analysis.source.rewrite import branch_to_where, tensor_condition
from nandoc.analysis.source.sites import BRANCH, Site
from nandoc.analysis.source.wording import location, measured, owner_text, per_line, quote
from nandoc.core.causes import CAUSES
from nandoc.core.finding import Finding, Severity

CONFIDENCE = 0.95
SHOWN = {"conditional expression": "`… if … else …`", "chained comparison": "chained comparison"}


def branch_findings(a: Analysis) -> Iterator[Finding]:
    """One finding per line that branches on a tensor; the statement (`if`) is named over the
    expressions in it."""
    for group in per_line(a.branches):
        site = min(group, key=lambda s: (s.op not in STATEMENTS, s.key))
        yield _finding(a, site)


def _finding(a: Analysis, site: Site) -> Finding:
    construct = SHOWN.get(site.op, f"`{site.op}`")
    test = a.source(site.arg)
    evidence = (
        f"{construct} at {a.path}:{site.line} asks Python for the truth value of"
        f" `{quote(test, 80)}`,"
        f" which depends on the tensors passed to {owner_text(site)}. Keras 3 cannot do that:"
        f" under the default compiled fit it raises OperatorNotAllowedInGraphError (\"Using a"
        f" symbolic `tf.Tensor` as a Python `bool` is not allowed\"), and with run_eagerly=True"
        f" ValueError (\"The truth value of an array with more than one element is"
        f" ambiguous\"). Wrapping it in ops.any/ops.all only hides that the intent was"
        f" per element."
    )
    return Finding(
        cause=BRANCH,
        severity=Severity.ERROR,
        confidence=CONFIDENCE,
        title=f"Python {construct} on a tensor ({quote(test, 40)}) in {owner_text(site)}",
        evidence=evidence,
        location=location(a, site),
        fix=_fix(a, site),
        measured=measured(a, site, construct=site.op),
        basis="static",
    )


def _fix(a: Analysis, site: Site) -> str:
    p, node = a.prefix, site.detail["node"]
    where = branch_to_where(site, a)
    if where is not None:
        return ("Select element-wise instead of branching (both values are computed, the"
                " condition picks one per element):\n    " + where.replace("\n", "\n    "))
    if isinstance(node, (ast.BoolOp, ast.UnaryOp, ast.Compare)):
        return f"Spell the condition with tensor ops:\n    {tensor_condition(node, a)}"
    if site.op == "while":
        return (f"Replace the Python loop with {p}.while_loop(cond, body, loop_vars), or compute"
                f" the result with vectorised ops.")
    if site.op == "assert":
        return ("Remove the assert from the code Keras traces; check the condition on the data"
                " before training instead.")
    return (f"{CAUSES[BRANCH].fix} For a single scalar condition that must choose which code"
            f" runs, use {p}.cond(pred, true_fn, false_fn).\n    {CAUSES[BRANCH].example}")
