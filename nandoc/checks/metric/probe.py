"""Custom metric functions evaluated op by op over the values the model's output can reach."""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

from nandoc.analysis.loss_probe import loss_findings, reachable_points
from nandoc.core.finding import Finding, Severity
from nandoc.core.registry import check
from nandoc.instrument.outputs import output_info
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo, with_source


def _metric_functions(model: Any, sources: list[SourceFile]) -> list[LossInfo]:
    """Custom metric functions named in the saved compile config, found in the user's files."""
    try:
        config = model.get_compile_config() or {}
    except Exception:
        return []
    objects = {k: v for s in sources for k, v in s.objects.items()}
    found: list[LossInfo] = []

    def visit(entry: Any) -> None:
        if isinstance(entry, (list, tuple)):
            for e in entry:
                visit(e)
        elif isinstance(entry, dict) and "class_name" not in entry:
            for e in entry.values():
                visit(e)
        elif isinstance(entry, dict) and entry.get("class_name") == "function":
            fn = objects.get(str(entry.get("config")))
            if fn is not None and not inspect.isclass(fn):
                found.append(with_source(LossInfo(fn.__name__, fn, False, False, None), fn))

    visit(config.get("metrics"))
    return found


@check(id="metric-probe", needs=("model", "data", "sources"), wants=("suspects", "passes"),
       causes=("unclipped-log", "division-by-zero", "sqrt-at-zero", "exp-overflow",
               "where-gradient-trap", "tensor-python-branch"))
def probe(model: Any, data: Dataset, sources: list[SourceFile],
          suspects: tuple[Finding, ...] | None, passes: Any = None):
    """Custom metric functions evaluated op by op over the values the output can reach."""
    out = output_info(model)
    if out is None:
        return
    metrics = _metric_functions(model, sources)
    if not metrics:
        return
    points = reachable_points(model, out, data, passes)
    for info in metrics:
        for f in loss_findings(info, points, sources, suspects or ()):
            if f.severity is Severity.ERROR:  # a NaN metric misleads; it does not train
                f = f.with_(severity=Severity.WARNING,
                            title=f.title.replace("loss", "metric", 1),
                            evidence=f.evidence + " A metric gets no gradient, so this makes "
                            "the logged metric NaN (and any callback watching it) rather than "
                            "the weights.")
            yield f.with_(location=replace(f.location, kind="metric"))
