"""JUnit XML for CI test reporters: one test case per check, one failure per finding.

The layout is the one Jenkins, GitLab, Azure DevOps and the GitHub JUnit actions read:
`<testsuites>` around one `<testsuite>` (the command), whose `<testcase classname name time>`
children each hold, for a check that ran, a `<failure>` per finding at or above the `--fail-on`
threshold; `<error>` for a check that crashed; `<skipped>` for one that did not apply. Findings
below the threshold go into the case's `<system-out>`, so nothing is lost. Suite counts count
test cases: `failures` is the number of checks with at least one failure.

There is no timestamp and no host name: the same report gives the same bytes. The report holds
no per-check times, so a case's `time` is 0 and the suite's is the run's total.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from nandoc.core.finding import FailOn, Finding
from nandoc.core.report import CheckResult, Outcome, Report

# Characters XML 1.0 cannot hold at all, even escaped (control characters but tab, LF, CR).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _INVALID.sub("\ufffd", str(text))


def _describe(rank: int, f: Finding) -> str:
    lines = [
        f"#{rank} {f.severity.value.upper()} {f.cause} (confidence {f.confidence:.2f})",
        f.title,
        f"where:    {f.location.short()}",
        f"evidence: {f.evidence}",
        f"fix:      {f.fix}",
    ]
    if f.verified_fix is not None:
        v = f.verified_fix
        lines.append(f"verified: {v.change}: {'NaN-free' if v.nan_free else 'still NaN'} "
                     f"over {v.steps_ran} steps")
    return "\n".join(lines)


def _cases(report: Report) -> list[tuple[CheckResult, list[tuple[int, Finding]]]]:
    """Each check with its ranked findings; findings of no listed check get a case of their own
    (named after their check, or their cause when they came from outside the registry)."""
    found: dict[str, list[tuple[int, Finding]]] = defaultdict(list)
    for rank, f in enumerate(report.findings, start=1):
        found[f.check or f.cause].append((rank, f))
    listed = [(c, found.pop(c.check, [])) for c in report.checks]
    extra = [(CheckResult(name, Outcome.RAN, len(fs)), fs) for name, fs in sorted(found.items())]
    return listed + extra


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def _case(classname: str, result: CheckResult, findings: list[tuple[int, Finding]],
          fail_on: FailOn) -> tuple[ET.Element, str | None]:
    """One <testcase>, and which count it adds to (failures, errors, skipped, or none)."""
    case = ET.Element("testcase", {"classname": classname, "name": _clean(result.check),
                                   "time": "0"})
    if result.outcome is Outcome.FAILED:
        _sub(case, "error", result.message, message=result.message, type="CheckCrashed")
        return case, "errors"
    if result.outcome is Outcome.NOT_APPLICABLE:
        _sub(case, "skipped", message=result.message)
        return case, "skipped"
    failing = [(r, f) for r, f in findings if fail_on.is_failing(f.severity)]
    below = [(r, f) for r, f in findings if not fail_on.is_failing(f.severity)]
    for rank, f in failing:
        _sub(case, "failure", _describe(rank, f), message=f"{f.cause}: {f.title}", type=f.cause)
    if below:
        _sub(case, "system-out", "\n\n".join(_describe(r, f) for r, f in below))
    return case, "failures" if failing else None


def render(report: Report, *, fail_on: FailOn = FailOn.ERROR) -> str:
    classname = f"nandoc.{report.command}"
    cases = [_case(classname, result, findings, fail_on)
             for result, findings in _cases(report)]
    counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
    for _, kind in cases:
        if kind:
            counts[kind] += 1
    time = f"{report.timings.get('total_s', 0.0):.3f}"
    attrs = {k: str(v) for k, v in counts.items()}
    root = ET.Element("testsuites", {"name": "nandoc", **attrs, "time": time})
    suite = _sub(root, "testsuite", name=f"nandoc {report.command}", **attrs, time=time)
    props = _sub(suite, "properties")
    inputs = [(f"nandoc.input.{k}", v) for k, v in report.inputs.items()
              if k in ("model", "data", "loss")]
    for name, value in (("nandoc.version", report.version), ("nandoc.command", report.command),
                        ("nandoc.status", report.status), ("nandoc.fail_on", fail_on.value),
                        *inputs):
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        _sub(props, "property", name=name, value=shown)
    for i, item in enumerate(report.not_checked, start=1):  # the scope a clean run does not cover
        _sub(props, "property", name=f"nandoc.not_checked.{i}", value=item)
    suite.extend(case for case, _ in cases)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
