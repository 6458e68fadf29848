"""Custom losses evaluated op by op over the values the model's output can reach."""

from __future__ import annotations

from typing import Any

from nandoc.analysis import remedies
from nandoc.analysis.loss_probe import loss_findings, reachable_points
from nandoc.analysis.source.rewrite import double_where_namespace
from nandoc.core.finding import Finding
from nandoc.core.fixes import Candidate
from nandoc.core.registry import check
from nandoc.instrument.outputs import output_info
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo


def fixes(finding: Finding) -> list[Candidate]:
    """Clipping inside the loss for a log that reaches 0; the double where for a where trap
    (on the user's own line, rewritten in memory)."""
    loc = finding.location
    if finding.cause == "unclipped-log" and loc.kind == "loss":
        return [Candidate(finding.cause, "clip y_pred to [1e-7, 1 - 1e-7] inside the loss",
                          remedies.clip_loss_input)]
    function = finding.measured.get("function")
    if finding.cause == "where-gradient-trap" and loc.file and loc.line and function:
        branch = finding.measured.get("unsafe_branch", "false")
        return [Candidate(finding.cause, f"the double-where rewrite of line {loc.line}",
                          remedies.replace_loss(
                              lambda: double_where_namespace(loc.file, loc.line, branch),
                              function, f"where() at {loc.file}:{loc.line}"))]
    return []


@check(id="loss-probe", needs=("model", "loss", "data"),
       wants=("sources", "suspects", "passes"),
       causes=("unclipped-log", "division-by-zero", "sqrt-at-zero", "exp-overflow",
               "where-gradient-trap", "tensor-python-branch", "domain-error",
               "activation-loss-mismatch"), fixes=fixes)
def probe(model: Any, loss: list[LossInfo], data: Dataset, sources: list[SourceFile] | None,
          suspects: tuple[Finding, ...] | None, passes: Any = None):
    """Losses evaluated op by op over the values the model's output can reach."""
    sources = sources or []
    out = output_info(model)
    if out is None:
        return
    # Built-in losses too: most clip their inputs, but not all (poisson takes the log of a
    # negative prediction), and a linear output reaches everything.
    custom = [info for info in loss if info.fn is not None]
    if not custom:
        return
    points = reachable_points(model, out, data, passes)
    for info in custom:
        yield from loss_findings(info, points, sources, suspects or ())


