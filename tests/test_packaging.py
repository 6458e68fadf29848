"""Packaging: the version in one place, the pre-commit hook, the GitHub Action, the CI scripts.

The YAML files are read with a small, strict reader of the block-YAML subset they use (pyyaml
is not a dependency): anything outside the subset is an error, so the files cannot drift into
syntax these checks do not see. The wheel itself is built, installed in a fresh venv and run by
.ci/wheel (too slow for the suite: it installs TensorFlow).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import nandoc
from nandoc.cli import app
from nandoc.core.finding import FailOn
from nandoc.render import Format

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# --- a strict reader of the YAML subset of .pre-commit-hooks.yaml and action.yml ------------

KEY = re.compile(r"([A-Za-z0-9_.-]+):(?:[ ]+(.*))?$")


def _scalar(text: str) -> object:
    if text[0] == '"':
        if not text.endswith('"') or len(text) < 2:
            raise ValueError(f"unterminated string {text!r}")
        return text[1:-1]
    if text[0] == "'":
        if not text.endswith("'") or len(text) < 2:
            raise ValueError(f"unterminated string {text!r}")
        return text[1:-1].replace("''", "'")
    if text[0] == "[":
        if not text.endswith("]"):
            raise ValueError(f"unterminated flow list {text!r}")
        return [_scalar(t.strip()) for t in text[1:-1].split(",") if t.strip()]
    if text[0] in "{&*!%@`":
        raise ValueError(f"YAML outside the subset: {text!r}")
    text = text.split(" #", 1)[0].rstrip()
    return {"true": True, "false": False}.get(text, text)


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.i = 0

    def peek(self) -> tuple[int, str] | None:
        while self.i < len(self.lines) and self.lines[self.i].strip()[:1] in ("", "#"):
            self.i += 1
        if self.i == len(self.lines):
            return None
        line = self.lines[self.i]
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValueError(f"line {self.i + 1}: a tab in the indentation")
        return len(line) - len(line.lstrip(" ")), line.strip()

    def node(self, indent: int) -> object:
        peeked = self.peek()
        assert peeked is not None and peeked[0] == indent
        return self.seq(indent) if peeked[1].startswith("- ") else self.mapping(indent)

    def seq(self, indent: int) -> list[object]:
        out: list[object] = []
        while (p := self.peek()) and p[0] == indent and p[1].startswith("- "):
            rest = p[1][2:].lstrip()
            col = indent + len(p[1]) - len(rest)
            if KEY.match(rest):  # "- key: value" opens a mapping at the column of "key"
                self.lines[self.i] = " " * col + rest
                out.append(self.mapping(col))
            else:
                self.i += 1
                out.append(_scalar(rest))
        return out

    def mapping(self, indent: int) -> dict[str, object]:
        out: dict[str, object] = {}
        while (p := self.peek()) and p[0] == indent and not p[1].startswith("- "):
            m = KEY.match(p[1])
            if not m:
                raise ValueError(f"line {self.i + 1}: not a 'key: value' line: {p[1]!r}")
            key, value = m.group(1), (m.group(2) or "").strip()
            if key in out:
                raise ValueError(f"line {self.i + 1}: duplicate key {key!r}")
            self.i += 1
            if value in ("|", "|-", ">", ">-"):
                out[key] = self.block(indent, value)
            elif value and not value.startswith("#"):
                out[key] = _scalar(value)
            else:
                nxt = self.peek()
                nested = nxt is not None and (
                    nxt[0] > indent or (nxt[0] == indent and nxt[1].startswith("- ")))
                out[key] = self.node(nxt[0]) if nested else None
        if (p := self.peek()) and p[0] > indent:
            raise ValueError(f"line {self.i + 1}: unexpected indentation: {p[1]!r}")
        return out

    def block(self, indent: int, style: str) -> str:
        body: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and len(line) - len(line.lstrip(" ")) <= indent:
                break
            body.append(line)
            self.i += 1
        while body and not body[-1].strip():
            body.pop()
        cut = min((len(s) - len(s.lstrip(" ")) for s in body if s.strip()), default=0)
        body = [s[cut:] for s in body]
        text = "\n".join(body) if style[0] == "|" else " ".join(s.strip() for s in body)
        return text if style.endswith("-") else text + "\n"


def load_yaml(path: Path) -> object:
    reader = _Reader(path.read_text(encoding="utf-8"))
    first = reader.peek()
    assert first is not None, f"{path} is empty"
    doc = reader.node(first[0])
    assert reader.peek() is None, f"{path}: unread content at line {reader.i + 1}"
    return doc


def test_the_yaml_reader_is_strict(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text in ("a: 1\na: 2\n", "a: 1\n   b: 2\n", "a: {b: 1}\n", "a: 'x\n", "just words\n"):
        bad.write_text(text)
        with pytest.raises((ValueError, AssertionError)):
            load_yaml(bad)
    good = tmp_path / "good.yaml"
    good.write_text("a:\n  - k: 'it''s'  \n    v: [x, \"y\"]\n  - plain # note\nb: >-\n  one\n"
                    "  two\nc: |\n  x\n   y\n")
    assert load_yaml(good) == {"a": [{"k": "it's", "v": ["x", "y"]}, "plain"],
                               "b": "one two", "c": "x\n y\n"}


# --- the license -----------------------------------------------------------------------------

# The MD5 of the Apache License 2.0 text as apache.org serves it (LICENSE-2.0.txt, leading blank
# line and appendix included): the file is the canonical text, unmodified.
APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_the_license_file_is_the_apache_2_text_and_the_build_ships_it():
    import hashlib

    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    # setuptools (>= 77, the build requirement) puts each listed file into the wheel's
    # .dist-info/licenses/ and the sdist; a listed file that is missing fails the build.
    assert project["license-files"] == ["LICENSE"]
    assert any(r.replace(" ", "").startswith("setuptools>=77")
               for r in PYPROJECT["build-system"]["requires"])
    text = (ROOT / "LICENSE").read_bytes()
    assert b"Apache License\n                           Version 2.0, January 2004" in text
    assert b"END OF TERMS AND CONDITIONS" in text
    assert hashlib.md5(text).hexdigest() == APACHE_2_MD5
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(exclude|global-exclude|prune)\s.*LICEN", manifest, re.M)


# --- the version, in one place ---------------------------------------------------------------

def test_the_version_has_one_place():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "nandoc._version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", nandoc.__version__)
    # No other file of the package or the build spells the version out.
    literal = re.compile(rf"""["']{re.escape(nandoc.__version__)}["']""")
    others = [p for p in [*(ROOT / "nandoc").rglob("*.py"), ROOT / "pyproject.toml"]
              if p.name != "_version.py" and literal.search(p.read_text(encoding="utf-8"))]
    assert not others, f"the version is written out in {others}: import nandoc._version"


def test_installed_metadata_and_cli_report_the_source_version():
    installed = importlib.metadata.version("nandoc")
    assert installed == nandoc.__version__, (
        f"installed metadata says {installed}, nandoc/_version.py says {nandoc.__version__}: "
        f"reinstall with pip install -e '.[test]'")
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"nandoc {nandoc.__version__}\n"


# --- the pre-commit hook ---------------------------------------------------------------------

def check_options() -> set[str]:
    command = typer.main.get_command(app).commands["check"]
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)
            if opt.startswith("-")}


def test_pre_commit_hook_runs_the_real_check_command():
    hooks = load_yaml(ROOT / ".pre-commit-hooks.yaml")
    assert isinstance(hooks, list)
    (hook,) = [h for h in hooks if h["id"] == "nandoc-check"]
    for key in ("id", "name", "entry", "language", "description", "files"):
        assert isinstance(hook.get(key), str) and hook[key], key
    assert hook["language"] == "python"  # pre-commit pip-installs this repository
    assert hook["pass_filenames"] is False and hook["always_run"] is False
    script, command, *args = shlex.split(hook["entry"])
    assert script in PYPROJECT["project"]["scripts"], f"{script} is not a console script"
    assert command in typer.main.get_command(app).commands
    assert set(a for a in args if a.startswith("-")) <= check_options()


@pytest.mark.parametrize("name, runs", [
    ("model.keras", True), ("models/best.h5", True), ("data/train.csv", True),
    ("train.csv.gz", True), ("data.parquet", True), ("arrays.npz", True),
    ("nandoc.toml", True), ("losses.py", True),
    ("README.md", False), ("notes.txt", False), ("img/cat.png", False), ("model.keras.bak", False),
])
def test_pre_commit_hook_runs_on_model_data_config_and_code_changes(name, runs):
    (hook,) = load_yaml(ROOT / ".pre-commit-hooks.yaml")
    assert bool(re.search(hook["files"], name)) is runs  # pre-commit matches with re.search


# --- the GitHub Action -----------------------------------------------------------------------

def test_action_is_a_composite_action_with_its_inputs():
    action = load_yaml(ROOT / "action.yml")
    assert isinstance(action["name"], str) and isinstance(action["description"], str)
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert set(inputs) == {"config", "args", "python-version", "fail-on", "version"}
    assert all(isinstance(i["description"], str) and "default" in i for i in inputs.values())
    assert inputs["config"]["default"] == "nandoc.toml"
    assert inputs["python-version"]["default"] == "3.11"
    assert FailOn(inputs["fail-on"]["default"]) is FailOn.ERROR
    steps = action["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@")
    assert steps[0]["with"]["python-version"] == "${{ inputs.python-version }}"
    for step in steps:
        assert ("run" in step) != ("uses" in step)
        if "run" in step:
            assert step["shell"] == "bash", f"a composite run step needs a shell: {step}"
    # Every ${{ inputs.x }} is declared, and every input is used.
    used = set(re.findall(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}",
                          (ROOT / "action.yml").read_text(encoding="utf-8")))
    assert used == set(inputs)


def test_action_installs_its_own_checkout_and_runs_real_check_options():
    steps = load_yaml(ROOT / "action.yml")["runs"]["steps"]
    install, run = [s for s in steps if "run" in s]
    assert install["env"]["NANDOC_SOURCE"] == "${{ github.action_path }}"
    assert "pip install" in install["run"] and "$NANDOC_SOURCE" in install["run"]
    (line,) = [s for s in run["run"].splitlines() if s.startswith("nandoc check")]
    words = shlex.split(line)
    assert words[:2] == ["nandoc", "check"]
    options = [w for w in words if w.startswith("-")]
    assert options and set(options) <= check_options(), set(options) - check_options()
    assert Format(words[words.index("--format") + 1]) is Format.GITHUB
    # The options' values are the inputs, passed through env (never spliced into the script).
    assert "${{" not in run["run"] and '"${extra[@]}"' in line
    for name, var in (("config", "$NANDOC_CONFIG"), ("fail-on", "$NANDOC_FAIL_ON"),
                      ("args", "$NANDOC_ARGS")):
        assert var in run["run"]
        assert run["env"][var[1:]] == f"${{{{ inputs.{name} }}}}"


# The action's check step, run by bash as GitHub runs it (`bash --noprofile --norc -eo pipefail
# {0}`), with this venv's real `nandoc` console script on PATH and the inputs in its env.
STEP_CASES = {  # id: (sample, fail-on, args)
    "planted-faults": ("conv1d_timeseries", "error", ""),
    "healthy": ("healthy", "warning", "--seed 0 --steps 5"),
    "unknown-option": ("healthy", "error", "--seed 0 --no-such-option"),
}


@pytest.fixture(scope="module")
def step_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    steps = load_yaml(ROOT / "action.yml")["runs"]["steps"]
    check_step = steps[-1]
    script = tmp_path_factory.mktemp("action") / "check-step.sh"
    script.write_text(check_step["run"])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    def run(case: tuple[str, str, str]) -> subprocess.CompletedProcess[str]:
        sample, fail_on, args = case
        env = {**os.environ, **check_step["env"], "PATH": path, "NANDOC_FAIL_ON": fail_on,
               "NANDOC_CONFIG": str(ROOT / "sample_configs" / sample / "nandoc.toml"),
               "NANDOC_ARGS": args}
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=script.parent, env=env, capture_output=True, text=True,
                              timeout=300)

    with ThreadPoolExecutor(len(STEP_CASES)) as pool:
        return dict(zip(STEP_CASES, pool.map(run, STEP_CASES.values()), strict=True))


def test_action_check_step_annotates_and_fails_on_findings(step_runs):
    done = step_runs["planted-faults"]
    assert done.returncode == 1, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("::error file=") and "data.csv" in first
    assert "title=nandoc #1 data-unscaled (error)::" in first


def test_action_check_step_passes_args_through(step_runs):
    done = step_runs["healthy"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::error" not in done.stdout and "::warning" not in done.stdout
    refused = step_runs["unknown-option"]
    assert refused.returncode == 2 and "--no-such-option" in refused.stderr


# --- CI --------------------------------------------------------------------------------------

def test_ci_runs_the_readme_test_command_then_the_wheel_check():
    readme_command = 'pip install -e ".[test]" && python -m pytest'
    assert readme_command in (ROOT / "README.md").read_text(encoding="utf-8")
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "set -euo pipefail" in run
    [line] = [ln for ln in run if ln.startswith(readme_command)]  # kept whole, output teed
    assert run.index(line) < run.index(".ci/wheel")
    wheel = (ROOT / ".ci" / "wheel").read_text(encoding="utf-8")
    assert "set -euo pipefail" in wheel.splitlines()
    assert "python3 -m venv" in wheel and "-m build" in wheel
    assert "sample_configs/conv1d_timeseries/nandoc.toml" in wheel
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"dist/", "build/", "*.egg-info/"} <= set(ignored)
