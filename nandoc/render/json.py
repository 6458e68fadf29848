"""The JSON report of the contract, with a schema version."""

from __future__ import annotations

import json
from typing import Any

from nandoc.core.report import SCHEMA_VERSION, Report


def to_dict(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nandoc": report.version,
        "schema_version": SCHEMA_VERSION,
        "command": report.command,
        "status": report.status,
        "findings": [f.to_dict(rank) for rank, f in enumerate(report.findings, start=1)],
    }
    out.update(report.extra)
    if report.first_nonfinite is not None:
        out["first_nonfinite"] = report.first_nonfinite.to_dict()
    missed = report.not_examined()
    if missed:
        out["not_examined"] = missed
    if report.not_checked:
        out["not_checked"] = list(report.not_checked)
    out["checks"] = [c.to_dict() for c in report.checks]
    out["inputs"] = report.inputs
    out["timings"] = report.timings
    return out


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
