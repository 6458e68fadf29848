"""Ranking, exit codes and renderers: pure functions of a Report, no TensorFlow needed."""

from __future__ import annotations

import json

import pytest

from nandoc.core.finding import FailOn, Finding, Location, Severity
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.render import Format, render


def finding(cause, severity=Severity.ERROR, confidence=0.9, **loc):
    return Finding(cause=cause, severity=severity, confidence=confidence, title=f"{cause} here",
                   evidence="seen", location=Location(kind=loc.pop("kind", "data"), **loc),
                   fix="do this")


def test_root_causes_rank_above_symptoms_and_errors_above_warnings():
    report = Report.build("check", "0.1.0", [
        finding("exploding-gradients", confidence=0.99),
        finding("unclipped-log", Severity.WARNING, 0.99, kind="loss", file="l.py", line=3),
        finding("softmax-single-unit", kind="layer", layer="out"),
        finding("data-nonfinite", confidence=0.5, column="a"),
        finding("empty-validation", confidence=0.99),
    ])
    assert [f.cause for f in report.findings] == [
        "data-nonfinite", "softmax-single-unit", "exploding-gradients", "empty-validation",
        "unclipped-log"]


def test_ranking_is_deterministic():
    fs = [finding("division-by-zero", kind="loss", file="l.py", line=n) for n in (9, 3, 5)]
    assert [f.location.line for f in Report.build("check", "0", fs).findings] == [3, 5, 9]


@pytest.mark.parametrize("fail_on, expected", [
    (FailOn.ERROR, 0), (FailOn.WARNING, 1), (FailOn.INFO, 1), (FailOn.NEVER, 0)])
def test_exit_code_follows_fail_on(fail_on, expected):
    report = Report.build("check", "0", [finding("data-unscaled", Severity.WARNING)])
    assert report.exit_code(fail_on) == expected


def test_clean_report_exits_zero_even_at_info():
    assert Report.build("check", "0", []).exit_code(FailOn.INFO) == 0


def test_confidence_is_bounded():
    with pytest.raises(ValueError):
        finding("data-nonfinite", confidence=1.5)


REPORT = Report.build(
    "check", "0.1.0",
    [finding("unclipped-log", kind="loss", name="sparse_penalty_logits", file="losses.py",
             line=7),
     finding("data-nonfinite", column="x", rows=(3, 9))],
    checks=(CheckResult("data-nonfinite", Outcome.RAN, 1),
            CheckResult("softmax-single-unit", Outcome.NOT_APPLICABLE, message="no model"),
            CheckResult("broken", Outcome.FAILED, message="ValueError: boom")),
    timings={"total_s": 1.25},
)


@pytest.mark.parametrize("fmt", list(Format), ids=[f.value for f in Format])
def test_every_format_renders(fmt):
    out = render(REPORT, fmt)
    assert "unclipped-log" in out and "data-nonfinite" in out


def test_json_follows_the_contract():
    doc = json.loads(render(REPORT, Format.JSON))
    assert doc["nandoc"] == "0.1.0" and doc["command"] == "check"
    assert doc["status"] == "findings" and doc["schema_version"] == 1
    first = doc["findings"][0]
    assert first["rank"] == 1 and first["cause"] == "data-nonfinite"
    assert first["location"] == {"kind": "data", "column": "x", "rows": [3, 9]}
    assert set(first) >= {"rank", "cause", "severity", "confidence", "title", "evidence",
                          "location", "fix", "verified_fix"}
    assert doc["findings"][1]["location"] == {"kind": "loss", "name": "sparse_penalty_logits",
                                              "file": "losses.py", "line": 7}
    assert doc["timings"]["total_s"] == 1.25
    assert {c["outcome"] for c in doc["checks"]} == {"ran", "not-applicable", "failed"}


def test_text_has_a_verdict_first_and_shows_failed_checks():
    out = render(REPORT, Format.TEXT, width=120)
    assert out.splitlines()[0].startswith("✘ 2 errors. Most likely root cause: data-nonfinite")
    assert "losses.py:7" in out and "rows 3, 9" in out
    assert "check broken could not run: ValueError: boom" in out
    assert "\x1b[" not in out  # no colour codes unless asked


def test_text_clean_verdict():
    assert render(Report.build("check", "0", []), Format.TEXT).startswith("✔ No NaN risk found.")


def test_a_measured_finding_supersedes_the_static_suspect_at_the_same_place():
    static = finding("unclipped-log", Severity.WARNING, 0.5, kind="loss", file="l.py", line=7)
    static = static.with_(basis="static")
    confirmed = finding("unclipped-log", Severity.ERROR, 0.95, kind="loss", file="l.py", line=7)
    other = finding("unclipped-log", Severity.WARNING, 0.5, kind="loss", file="l.py", line=9)
    report = Report.build("check", "0", [static, confirmed, other.with_(basis="static")])
    assert [(f.location.line, f.severity.value) for f in report.findings] == [
        (7, "error"), (9, "warning")]
