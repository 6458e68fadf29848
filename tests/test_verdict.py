"""The verdict rules: clean, findings or incomplete, and the exit code; observation confirms;
nothing non-finite seen is ever left unsaid; rows in common."""

from __future__ import annotations

import numpy as np
import pytest

from nandoc.core.finding import FailOn, Finding, Location, Severity
from nandoc.core.records import FirstNonfinite
from nandoc.core.report import CheckResult, Outcome, Report


def finding(cause="unclipped-log", severity=Severity.ERROR, **loc) -> Finding:
    return Finding(cause=cause, severity=severity, confidence=0.7, title=cause, evidence="e.",
                   location=Location(kind=loc.pop("kind", "loss"), **loc), fix="f")


RAN = CheckResult("a", Outcome.RAN)
CRASHED = CheckResult("b", Outcome.FAILED, message="RuntimeError: boom")


@pytest.mark.parametrize(("findings", "checks", "step_error", "status", "exit_error",
                          "exit_never"), [
    ([], [RAN], None, "clean", 0, 0),
    ([finding(severity=Severity.WARNING)], [RAN], None, "findings", 0, 0),
    ([finding()], [RAN], None, "findings", 1, 0),
    ([], [RAN, CRASHED], None, "incomplete", 2, 2),
    ([finding(severity=Severity.WARNING)], [CRASHED], None, "incomplete", 2, 2),
    ([finding()], [CRASHED], None, "findings", 1, 0),  # an error finding explains the run
    ([], [RAN], "ValueError: bad step", "incomplete", 2, 2),
    ([finding()], [RAN], "ValueError: bad step", "findings", 1, 0),
], ids=["clean", "warning-only", "error", "crashed-check", "crash-and-warning",
        "crash-and-error", "step-raised", "step-raised-with-error"])
def test_verdict_table(findings, checks, step_error, status, exit_error, exit_never):
    report = Report.build("check", "0", findings, checks=tuple(checks), step_error=step_error)
    assert report.status == status
    assert report.exit_code(FailOn.ERROR) == exit_error
    assert report.exit_code(FailOn.NEVER) == exit_never
    if status == "incomplete":
        assert report.not_examined()


def test_incomplete_is_rendered_as_such_never_as_no_risk():
    from nandoc.render import Format, render
    from nandoc.render.json import to_dict

    report = Report.build("check", "0", [], checks=(CRASHED,))
    text = render(report, Format.TEXT)
    assert "Incomplete" in text and "No NaN risk" not in text
    doc = to_dict(report)
    assert doc["status"] == "incomplete" and doc["not_examined"] == ["check b: RuntimeError: boom"]


FIRST = FirstNonfinite(where="backward", epoch=3, step=7, op="Log", file="losses.py", line=12,
                       rows=(5, 9))


def test_a_finding_at_the_place_of_the_first_nonfinite_value_is_confirmed():
    from nandoc.engine.confirm import confirm

    suspect = finding(severity=Severity.WARNING, file="/abs/path/losses.py", line=12)
    elsewhere = finding(cause="exp-overflow", severity=Severity.WARNING, file="losses.py",
                        line=30)
    out = confirm([elsewhere, suspect], FIRST)
    assert [f.cause for f in out] == ["exp-overflow", "unclipped-log"]
    assert out[1].confirmed and out[1].severity is Severity.ERROR
    assert "Confirmed in training" in out[1].evidence
    assert not out[0].confirmed and out[0].severity is Severity.WARNING
    ranked = Report.build("replay", "0", out).findings
    assert ranked[0].cause == "unclipped-log"


def test_a_nonfinite_value_no_finding_explains_is_an_error_saying_where():
    from nandoc.engine.confirm import confirm

    cleared = finding(severity=Severity.INFO, file="losses.py", line=12)  # never promoted
    out = confirm([cleared], FIRST)
    assert out[0].severity is Severity.INFO and not out[0].confirmed
    unexplained = out[-1]
    assert unexplained.cause == "nonfinite-unexplained"
    assert unexplained.severity is Severity.ERROR
    assert (unexplained.location.epoch, unexplained.location.step) == (3, 7)
    assert "backward" in unexplained.title and "losses.py:12" in unexplained.evidence
    assert Report.build("replay", "0", out).exit_code(FailOn.ERROR) == 1


def test_without_an_observation_nothing_changes():
    from nandoc.engine.confirm import confirm

    findings = [finding(severity=Severity.WARNING)]
    assert confirm(findings, None) == findings


def test_a_label_all_nonfinite_rows_share_confirms_the_label_finding():
    from nandoc.engine.confirm import confirm

    first = FirstNonfinite(where="loss", epoch=1, step=2, op="Log", file="l.py", line=3,
                           extra={"rows_in_common": {"property": "label", "value": 3.0}})
    label = finding(cause="label-out-of-range", severity=Severity.ERROR, kind="data",
                    column="y")
    log = finding(file="l.py", line=3)
    ranked = Report.build("check", "0", confirm([log, label], first)).findings
    assert [f.cause for f in ranked] == ["label-out-of-range", "unclipped-log"]
    assert all(f.confirmed for f in ranked)


@pytest.mark.parametrize(("x", "y", "bad", "prop"), [
    (np.ones((6, 2)), np.array([0, 1, 3, 0, 1, 3.0]), [0, 0, 1, 0, 0, 1], "label"),
    (np.ones((6, 2)), np.array([0, 1, 1, 0, 1, 0.0]), [0, 0, 1, 0, 0, 1], None),
    (np.array([[1, 2], [1e9, 0], [3, 1], [2, 2]], float), np.zeros(4), [0, 1, 0, 0], "extreme"),
    (np.array([[0, 0], [1, 2], [0, 0], [3, 1]], float), np.array([0, 1, 1, 0.0]),
     [1, 0, 1, 0], "zero"),
    (np.stack([np.full((5, 1), 2.0), np.arange(5.0)[:, None], np.full((5, 1), 7.0),
               np.arange(5.0)[:, None] * 2]), np.array([0, 0, 1, 1.0]), [1, 0, 1, 0],
     "constant"),
    (np.ones((4, 2)), np.array([0, 1, 2, 3.0]), [1, 1, 1, 1], None),  # every row: nothing
], ids=["label", "shared-label-also-finite", "extreme", "zero", "constant", "all-rows"])
def test_rows_in_common(x, y, bad, prop):
    from nandoc.analysis.rows import rows_in_common

    found = rows_in_common(x, y, np.array(bad, bool))
    assert (found.property if found else None) == prop


OPAQUE = '''\
from keras import ops


def opaque(y_true, y_pred):
    scale = float(y_pred.numpy().mean() * 0 + 1)  # works eagerly only: cannot be traced
    return ops.mean(ops.square(y_true - y_pred)) * scale
'''


def test_a_run_that_could_not_examine_everything_is_incomplete_exit_2(tmp_path):
    """End to end: a loss nandoc cannot trace (and compiled fit cannot run) leaves the loss
    probe failed and the burst's step raising, with no error finding: exit 2, the partial
    report on stdout, one paragraph on stderr, no traceback."""
    import json

    import keras

    from nandoc.loading.custom_objects import import_source
    from tests.conftest import healthy_rows, write_csv
    from tests.test_cli import nandoc

    losses = tmp_path / "losses.py"
    losses.write_text(OPAQUE)
    fn = import_source(losses).objects["opaque"]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss=fn)
    model.save(tmp_path / "m.keras")
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], healthy_rows())
    res = nandoc("check", tmp_path / "m.keras", data, "--target", "label", "--custom-objects",
                 losses, "--format", "json")
    assert res.returncode == 2, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "incomplete"
    assert any(m.startswith("check loss-probe") for m in doc["not_examined"])
    assert any(m.startswith("training step") for m in doc["not_examined"])
    assert "incomplete" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(("loss", "diverging"), [
    ([1.0, 1.5, 2.2, 3.1, 4.8, 7.0], True),  # rising most of the way
    ([1.0, 0.9, 800.0, 790.0, 805.0, 798.0, 801.0, 799.0], True),  # a jump it stays at
    ([1.0, 0.9, 800.0, 0.8, 0.7, 0.6, 0.6, 0.5], False),  # a spike it recovers from
    ([1.0, 0.8, 0.7, 0.6, 0.55, 0.5], False),  # learning
], ids=["rising", "jump-and-stay", "spike", "falling"])
def test_divergence_without_a_nan(loss, diverging):
    from nandoc.analysis.trends import diverges_early
    from nandoc.core.records import StepLog

    log = StepLog()
    for i, v in enumerate(loss, start=1):
        log.record(1, i, v)
    assert diverges_early(log)[0] is diverging
