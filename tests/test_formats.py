"""CI formats (JUnit XML, GitHub annotations), quiet/verbose text, and `explain` from the one
catalogue: pure functions of a Report or the catalogue, no TensorFlow needed."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import pytest

from nandoc.core.causes import CAUSES
from nandoc.core.finding import FailOn, Finding, Location, Severity
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.render import QUIET, VERBOSE, Format, RenderOptions, render, renderer
from nandoc.render import explain as explain_render
from nandoc.render.github import command, escape_data, escape_property
from tests.test_registry import CONTRACT_IDS

REPO = Path(__file__).resolve().parent.parent


def finding(cause, severity=Severity.ERROR, check="", **loc):
    return Finding(cause=cause, severity=severity, confidence=0.9, title=f"{cause} here",
                   evidence="seen 50% of the time", fix="do this, then that",
                   location=Location(kind=loc.pop("kind", "data"), **loc), check=check)


REPORT = Report.build(
    "check", "0.1.0",
    [finding("data-nonfinite", check="data-nonfinite", column="x", rows=(3, 9), lines=(4, 10),
             file="data.csv"),
     finding("data-unscaled", Severity.WARNING, check="data-unscaled", column="big",
             file="data.csv"),
     finding("unclipped-log", check="loss-probe", kind="loss", name="my_loss",
             file="/ci/proj/losses.py", line=7),
     finding("exploding-gradients", Severity.INFO, kind="optimizer"),
     finding("float16-overflow", Severity.WARNING, check="step-float16-overflow",
             kind="layer", layer="dense")],
    checks=(CheckResult("data-nonfinite", Outcome.RAN, 1),
            CheckResult("data-unscaled", Outcome.RAN, 1),
            CheckResult("loss-probe", Outcome.RAN, 1),
            CheckResult("empty-validation", Outcome.RAN, 0),
            CheckResult("softmax-single-unit", Outcome.NOT_APPLICABLE, message="no model"),
            CheckResult("broken", Outcome.FAILED, message="ValueError: boom"),
            CheckResult("step-float16-overflow", Outcome.RAN, 1)),
    inputs={"model": "/ci/proj/model.keras", "data": "/ci/proj/data/data.csv"},
    timings={"total_s": 1.25},
)


def test_every_format_is_mapped():
    for fmt in Format:
        assert callable(renderer(fmt))


# -- JUnit -------------------------------------------------------------------------------------


def junit(report=REPORT, fail_on=FailOn.ERROR):
    return ET.fromstring(render(report, Format.JUNIT, fail_on=fail_on).encode("utf-8"))


def test_junit_is_xml_with_a_test_case_per_check_and_a_failure_per_finding():
    root = junit()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    # every check, plus one case for the finding that came from no listed check
    assert list(cases) == ["data-nonfinite", "data-unscaled", "loss-probe", "empty-validation",
                           "softmax-single-unit", "broken", "step-float16-overflow",
                           "exploding-gradients"]
    for case in cases.values():
        assert case.get("classname") == "nandoc.check" and case.get("time") is not None
    failure = cases["data-nonfinite"].find("failure")
    assert failure.get("type") == "data-nonfinite"
    assert failure.get("message") == "data-nonfinite: data-nonfinite here"
    assert "rows 3, 9" in failure.text and "do this, then that" in failure.text
    assert [f.get("type") for f in cases["loss-probe"].findall("failure")] == ["unclipped-log"]
    # below the threshold: passing, but kept in system-out
    assert cases["data-unscaled"].find("failure") is None
    assert "data-unscaled" in cases["data-unscaled"].find("system-out").text
    assert list(cases["empty-validation"]) == []
    assert cases["softmax-single-unit"].find("skipped").get("message") == "no model"
    assert cases["broken"].find("error").get("message") == "ValueError: boom"
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "8", "failures": "2", "errors": "1", "skipped": "1"}
    assert {k: root.get(k) for k in counts} == counts
    assert suite.get("time") == "1.250" and suite.get("name") == "nandoc check"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["nandoc.version"] == "0.1.0" and props["nandoc.fail_on"] == "error"


@pytest.mark.parametrize("fail_on, failures", [
    (FailOn.ERROR, 2), (FailOn.WARNING, 4), (FailOn.INFO, 5), (FailOn.NEVER, 0)])
def test_junit_failures_follow_fail_on(fail_on, failures):
    root = junit(fail_on=fail_on)
    assert len(list(root.iter("failure"))) == failures
    assert root.find("testsuite").get("failures") == str(failures)


def test_junit_is_deterministic_and_survives_control_characters():
    assert render(REPORT, Format.JUNIT) == render(REPORT, Format.JUNIT)
    nasty = Report.build("check", "0", [Finding(
        cause="data-nonfinite", severity=Severity.ERROR, confidence=0.9,
        title="text cell '\x00\x1b[31m' & <b>", evidence="a]]>b", fix="x",
        location=Location(kind="data"), check="data-nonfinite")],
        checks=(CheckResult("data-nonfinite", Outcome.RAN, 1),))
    failure = junit(nasty).find(".//failure")
    assert "& <b>" in failure.get("message") and "a]]>b" in failure.text


def test_junit_clean_report_has_passing_cases_only():
    clean = Report.build("check", "0", [], checks=(CheckResult("data-nonfinite", Outcome.RAN),))
    root = junit(clean)
    assert root.get("failures") == "0" and root.get("tests") == "1"
    assert list(root.find(".//testcase")) == []


# -- GitHub annotations ------------------------------------------------------------------------

ANNOTATION = re.compile(r"^::(error|warning|notice)(?: ((?:[a-zA-Z]+=[^,:\r\n]*)"
                        r"(?:,[a-zA-Z]+=[^,:\r\n]*)*))?::([^\r\n]*)$")


def annotations(base="/ci/proj"):
    out = render(REPORT, Format.GITHUB, base_dir=PurePosixPath(base)).splitlines()
    parsed = []
    for line in out[:-1]:
        m = ANNOTATION.match(line)
        assert m, line
        props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        parsed.append((m.group(1), props, m.group(3)))
    return parsed, out[-1]


def test_github_annotations_match_the_workflow_command_syntax():
    parsed, last = annotations()
    levels = [level for level, _, _ in parsed]
    # by rank, then the crashed check
    assert levels == ["error", "error", "warning", "warning", "notice", "warning"]
    data, loss = parsed[0][1], parsed[1][1]
    # the data file by its path relative to the working directory, at the first bad row's line
    assert data["file"] == "data/data.csv" and data["line"] == "4"
    assert loss["file"] == "losses.py" and loss["line"] == "7"
    assert parsed[3][1]["file"] == "model.keras" and "line" not in parsed[3][1]  # a layer
    assert "file" not in parsed[4][1] and "line" not in parsed[4][1]
    assert parsed[0][1]["title"] == "nandoc #1 data-nonfinite (error)"
    message = parsed[0][2]
    assert "%0A" in message and "\n" not in message and "50%25 of the time" in message
    assert "broken" in parsed[5][1]["title"]
    assert last.startswith("nandoc check: ✘ 2 errors, 2 warnings, 1 note.")


def test_github_paths_outside_the_base_stay_absolute():
    parsed, _ = annotations(base="/elsewhere")
    assert parsed[1][1]["file"] == "/ci/proj/losses.py"


def test_github_escaping_follows_the_toolkit():
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    assert command("warning", "m", file="x,y.py", line=3, title=None) == \
        "::warning file=x%2Cy.py,line=3::m"
    assert command("notice", "only a message") == "::notice::only a message"


# -- quiet and verbose text --------------------------------------------------------------------


def test_quiet_text_is_the_verdict_and_the_errors():
    out = render(REPORT, Format.TEXT, verbosity=QUIET, width=40).splitlines()
    assert out[0].startswith("✘ 2 errors, 2 warnings, 1 note. Most likely root cause: data-")
    assert out[0].endswith("data-nonfinite here")  # never cut, whatever the width
    assert out[1:] == ["check broken could not run: ValueError: boom"]


def test_verbose_text_lists_checks_with_reasons_and_timings():
    out = render(REPORT, Format.TEXT, RenderOptions(verbosity=VERBOSE, width=120))
    assert "softmax-single-unit" in out and "no model" in out
    assert re.search(r"empty-validation\s+ran\s+0 findings", out)
    assert "Timings  total 1.25s" in out
    assert "\x1b[" not in out


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal, no_color, coloured", [
    (True, None, True), (False, None, False), (True, "1", False), (False, "1", False),
    (True, "", True)])  # no-color.org: set to a non-empty value
def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch, terminal, no_color,
                                                           coloured):
    """The text report as `nandoc check` prints it to a stream."""
    from nandoc.cli.output import color_wanted

    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    stream = Terminal() if terminal else io.StringIO()
    assert color_wanted(stream) is coloured
    out = render(REPORT, Format.TEXT, color=color_wanted(stream))
    assert ("\x1b[" in out) is coloured


# -- explain: one catalogue --------------------------------------------------------------------


def detectors(cause: str):
    """What the explain command passes the renderer: the registered checks emitting `cause`."""
    from nandoc.checks import load_all
    from nandoc.core.registry import checks_emitting

    load_all()
    return checks_emitting(cause)


@pytest.mark.parametrize("cause", CONTRACT_IDS)
def test_explain_covers_every_contract_cause(cause):
    text = explain_render.text(CAUSES[cause], detectors(cause))
    for heading in ("What it is", "Why it makes NaN", "How to confirm", "How to fix",
                    "Example:"):
        assert f"\n{heading}" in text or f"  {heading}" in text, (cause, heading)
    example = CAUSES[cause].example.splitlines()[0]
    assert f"    {example}" in text
    assert text.startswith(f"{cause}: {CAUSES[cause].summary}")


def test_explain_names_the_checks_and_their_files():
    from nandoc.core.registry import CheckSpec

    spec = CheckSpec(id="data-nonfinite", title="", needs=(), causes=("data-nonfinite",),
                     func=lambda: (), module="nandoc.checks.data.nonfinite")
    text = explain_render.text(CAUSES["data-nonfinite"], [spec])
    assert text.endswith("Detected by nandoc check: data-nonfinite "
                         "(nandoc/checks/data/nonfinite.py).\n")
    text = explain_render.text(CAUSES["unclipped-log"], detectors("unclipped-log"))
    paths = re.findall(r"\(([\w/]+\.py)\)", text)
    assert paths and all((REPO / path).is_file() for path in paths)
    assert explain_render.text(CAUSES["data-nonfinite"], []).rstrip().endswith(
        "callback inside your own fit.")  # causes only training shows keep their wording


def test_explain_index_lists_every_cause_and_suggests_near_misses():
    index = explain_render.index()
    assert all(re.search(rf"^{re.escape(c)}\s", index, re.M) for c in CAUSES)
    assert explain_render.suggest("unclipped-lgo") == " Did you mean 'unclipped-log'?"
    assert explain_render.suggest("zzz") == ""


def test_docs_catalogue_is_generated_from_the_catalogue():
    """docs/causes.md is `nandoc explain --markdown`; regenerate it after editing causes.py."""
    from typer.testing import CliRunner

    from nandoc.cli import app

    current = (REPO / "docs" / "causes.md").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["explain", "--markdown"])
    assert res.exit_code == 0, res.output
    assert current == res.stdout, \
        "docs/causes.md is stale: run `nandoc explain --markdown > docs/causes.md`"


def test_readme_table_names_every_cause():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [c for c in CAUSES if f"| `{c}` |" not in readme] == []


def test_ci_formats_say_what_a_clean_run_did_not_check():
    scoped = Report.build("check", "0", [], checks=(CheckResult("data-nonfinite", Outcome.RAN),),
                          not_checked=("the model: no [model] path was given",))
    props = {p.get("name"): p.get("value") for p in junit(scoped).iter("property")}
    assert props["nandoc.not_checked.1"] == "the model: no [model] path was given"
    lines = render(scoped, Format.GITHUB).splitlines()
    level, _, message = ANNOTATION.match(lines[0]).groups()
    assert level == "notice" and message == "nandoc did not check the model: no [model] path " \
                                            "was given"
    assert lines[-1].startswith("nandoc check: ") and "not checked" in lines[-1]
    assert not any(p.startswith("nandoc.not_checked") for p in
                   (q.get("name") for q in junit(REPORT).iter("property")))


def test_text_lists_the_columns_left_out_and_how_the_file_was_read():
    report = Report.build("check", "0", [], checks=(CheckResult("data-nonfinite", Outcome.RAN),),
                          inputs={"data": "d.csv", "unused_columns": [
                              {"column": "city", "why": "column 'city' holds text ('Köln')"}],
                                  "data_notes": ["encoded in UTF-16 LE"]})
    text = render(report, Format.TEXT)
    assert re.search(r"^not used\s+column 'city' holds text \('Köln'\)$", text, re.M)
    assert re.search(r"^read\s+encoded in UTF-16 LE$", text, re.M)
    assert "not used" not in render(REPORT, Format.TEXT)


def test_text_width_follows_the_terminal_and_is_100_when_piped():
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    code = ("import sys; from nandoc.cli.output import text_width; "
            "print(text_width(None), text_width(__import__('pathlib').Path('r.txt')), "
            "file=sys.stderr)")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
    try:
        tty = subprocess.run([sys.executable, "-c", code], stdout=follower,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
    assert tty.stderr.split() == ["132", "100"]  # -o writes a file: 100 whatever the terminal
    assert piped.stderr.split() == ["100", "100"]
