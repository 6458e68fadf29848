"""The real CLI as a subprocess: JSON on stdout, --output, exit codes, errors without tracebacks.

Each run pays the TensorFlow import, so this file keeps to the behaviours only a real process
shows; everything else is tested in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import healthy_rows, write_csv

QUIET_ENV = {"NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}  # plain, predictable output
ENV = {**os.environ, **QUIET_ENV}


def nandoc(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_json_report_and_exit_1_on_an_error(tmp_path, models):
    rows = healthy_rows()
    rows[2][0] = "oops"
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    res = nandoc("check", models["binary"], data, "--target", "label", "--format", "json")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    top = doc["findings"][0]
    assert top["cause"] == "data-nonfinite" and top["location"]["rows"] == [3]
    assert doc["status"] == "findings" and doc["command"] == "check"
    assert "Traceback" not in res.stderr and "I0000" not in res.stderr


def test_config_output_file_and_fail_on(tmp_path, models):
    write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"],
              [[a, b, c * 1e5, y] for a, b, c, y in healthy_rows()])
    (tmp_path / "nandoc.toml").write_text(
        f'[model]\npath = "{models["binary"].as_posix()}"\n'
        '[data]\npath = "data.csv"\ntarget = "label"\n')
    out = tmp_path / "report.json"
    res = nandoc("check", "--format", "json", "--output", out, cwd=tmp_path)  # ./nandoc.toml
    assert res.returncode == 0 and res.stdout == ""  # a warning does not fail by default
    assert json.loads(out.read_text())["findings"][0]["cause"] == "data-unscaled"
    res = nandoc("check", "--config", tmp_path / "nandoc.toml", "--fail-on", "warning")
    assert res.returncode == 1
    assert res.stdout.startswith("⚠ 1 warning. Top suspect: data-unscaled")


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "{tmp}/nope.keras", "{tmp}/data.csv", "--target", "label"],
         "The model file"),
        (["check", "{binary}", "{tmp}/data.csv", "--target", "lable"],
         "Did you mean 'label'?"),
        (["check", "--config", "{tmp}/bad.toml"], "unknown key 'bach_size'"),
        (["check"], "Nothing to check"),
        (["explain", "no-such-cause"], "Unknown cause 'no-such-cause'"),
    ],
    ids=["missing-model", "unknown-target", "bad-config", "nothing", "unknown-cause"],
)
def test_bad_input_exits_2_with_one_paragraph(tmp_path, models, args, message):
    write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows(20))
    (tmp_path / "bad.toml").write_text("[train]\nbach_size = 3\n")
    args = [a.format(tmp=tmp_path, binary=models["binary"]) for a in args]
    res = nandoc(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.startswith("nandoc: error: ")
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_version_and_explain():
    res = nandoc("--version")
    assert res.returncode == 0 and res.stdout.strip() == "nandoc 0.1.0"
    res = nandoc("explain", "where-gradient-trap")
    assert res.returncode == 0 and "double where" in res.stdout and "x_safe" in res.stdout


def test_junit_report_to_a_file_fails_the_build_by_exit_code(tmp_path, models):
    import xml.etree.ElementTree as ET

    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"],
                     [[a, b, c * 1e5, y] for a, b, c, y in healthy_rows()])
    out = tmp_path / "nandoc.xml"
    res = nandoc("check", models["binary"], data, "--target", "label", "--format", "junit",
                 "--output", out, "--fail-on", "warning")
    assert res.returncode == 1 and res.stdout == "", res.stderr
    root = ET.parse(out).getroot()
    failures = root.findall(".//testcase/failure")
    assert [f.get("type") for f in failures] == ["data-unscaled"]
    assert root.get("failures") == "1" and int(root.get("tests")) >= 10


# -- in-process: the CLI layer itself, without paying a TensorFlow start-up per run -----------


@pytest.fixture()
def cli():
    from typer.testing import CliRunner

    from nandoc.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], env=QUIET_ENV)


def test_init_then_check_in_process(tmp_path, models, cli):
    import shutil

    shutil.copy(models["binary"], tmp_path / "model.keras")
    write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows())
    res = cli("init", tmp_path)
    assert res.exit_code == 0 and "target  label (guessed: a column named 'label')" in res.output
    res = cli("init", tmp_path)
    assert res.exit_code == 2 and "already exists" in res.output and "--force" in res.output
    res = cli("check", "-c", tmp_path / "nandoc.toml", "-q")
    assert res.exit_code == 0 and res.output == "✔ No NaN risk found.\n"
    res = cli("check", "-c", tmp_path / "nandoc.toml", "-v")
    assert res.exit_code == 0 and "Checks" in res.output and "not-applicable" in res.output
    assert "Timings" in res.output
    res = cli("check", "-c", tmp_path / "nandoc.toml", "-q", "-v")
    assert res.exit_code == 2


def test_github_format_in_process(tmp_path, models, cli):
    rows = healthy_rows()
    rows[2][0] = "oops"
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    res = cli("check", models["binary"], data, "--target", "label", "--format", "github")
    assert res.exit_code == 1
    first = res.output.splitlines()[0]
    assert first.startswith("::error file=") and ",line=4,title=nandoc #1 data-nonfinite" in first


def test_explain_lists_and_explains(cli):
    from nandoc.core.causes import CAUSES

    res = cli("explain")
    assert res.exit_code == 0 and all(c in res.output for c in CAUSES)
    res = cli("explain", "unclipped-log")
    assert res.exit_code == 0 and "How to fix" in res.output and "keras.ops.clip" in res.output
    res = cli("explain", "unclipped-log", "--markdown")
    assert res.output.startswith("## `unclipped-log`")
    res = cli("check", "--help")
    assert "Examples:" in res.output and "--format junit" in res.output
