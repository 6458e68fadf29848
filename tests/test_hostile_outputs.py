"""Outputs never destroy inputs: `check -o`, `replay -o`/`--plot` and NanDoctor's report_path
are refused, before any work starts, when they would replace one of the run's input files
(through a symlink or a hard link too), each other, or land in a folder that is not there.

The CLI cases are real `python -m nandoc` processes; they are all refused before TensorFlow is
imported, so they are cheap, and run a few at a time in one module fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from nandoc.atomic import OutputPathError, guard_outputs, replaceable_report, same_file
from nandoc.errors import NandocError
from tests.conftest import healthy_rows, write_csv

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
HEADER = ["a", "b", "c", "label"]

# A [data] source file that leaves a mark when nandoc imports it: a refusal "before any work"
# must leave none.
SOURCE = """\
from pathlib import Path

Path(__file__).with_name("imported.mark").write_text("imported")


def make():
    import numpy as np
    x = np.zeros((8, 3), dtype="float32")
    return x, np.zeros(8, dtype="float32")
"""


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path, dict[str, Path]], list[str]]  # (folder, models) -> CLI arguments
    phrases: tuple[str, ...]
    protected: tuple[str, ...] = ()  # files (relative to the folder) that must stay unchanged


def _data(d: Path) -> Path:
    return write_csv(d / "data.csv", HEADER, healthy_rows(40))


def _toml(d: Path, model: Path, extra: str = "") -> Path:
    p = d / "nandoc.toml"
    p.write_text(f'[model]\npath = "{model.as_posix()}"\n[data]\npath = "data.csv"\n'
                 f'target = "label"\n{extra}')
    return p


def _source_toml(d: Path, model: Path) -> Path:
    (d / "src.py").write_text(SOURCE)
    p = d / "nandoc.toml"
    p.write_text(f'[model]\npath = "{model.as_posix()}"\n[data]\nsource = "src.py:make"\n')
    return p


def _symlink(d: Path, target: Path, name: str) -> Path:
    link = d / name
    link.symlink_to(target)
    return link


def _hardlink(d: Path, target: Path, name: str) -> Path:
    link = d / name
    os.link(target, link)
    return link


def _model_copy(d: Path, models: dict[str, Path]) -> Path:
    p = d / "model.keras"
    p.write_bytes(models["binary"].read_bytes())
    return p


CASES = [
    Case("output-is-the-data", lambda d, m: ["check", str(m["binary"]), str(_data(d)),
                                             "--target", "label", "-o", "data.csv"],
         ("--output data.csv is the training data file", "never writes over its inputs",
          "Choose another path for --output"), ("data.csv",)),
    Case("output-symlink-to-the-model",
         lambda d, m: ["check", str(_model_copy(d, m)), str(_data(d)), "--target", "label",
                       "-o", str(_symlink(d, d / "model.keras", "report.json"))],
         ("report.json is the model file", "model.keras, the same file"), ("model.keras",)),
    Case("output-hardlink-to-custom-objects",
         lambda d, m: ["check", str(m["binary"]), str(_data(d)), "--target", "label",
                       "--custom-objects", str(_write(d / "losses.py", "X = 1\n")),
                       "-o", str(_hardlink(d, d / "losses.py", "out.json"))],
         ("out.json is the custom_objects file", "losses.py, the same file"), ("losses.py",)),
    Case("output-is-the-default-config", lambda d, m: _default_config(d, m),
         ("--output nandoc.toml is the config file",), ("nandoc.toml",)),
    Case("output-is-the-validation-file", lambda d, m: _validation(d, m),
         ("v.csv is the validation data file",), ("v.csv", "data.csv")),
    Case("plot-is-the-source-file",
         lambda d, m: ["replay", "-c", str(_source_toml(d, m["binary"])), "--plot", "src.py"],
         ("--plot src.py is the [data] source file",), ("src.py",)),
    Case("output-and-plot-the-same",
         lambda d, m: ["replay", str(m["binary"]), str(_data(d)), "--target", "label",
                       "-o", "same.png", "--plot", "./same.png"],
         ("--output same.png and --plot same.png are the same file", "different paths")),
    Case("output-folder-missing-refused-before-any-work",
         lambda d, m: ["replay", "-c", str(_source_toml(d, m["binary"])), "-o",
                       "no/such/folder/r.json"],
         ("The folder of --output no/such/folder/r.json", "does not exist", "Create it")),
    Case("output-is-a-folder",
         lambda d, m: ["check", str(m["binary"]), str(_data(d)), "--target", "label", "-o",
                       str(d)],
         ("is a folder; give the path of a file",)),
]


def _default_config(d: Path, models: dict[str, Path]) -> list[str]:
    """./nandoc.toml, read because no --config was given, is an input too."""
    _data(d)
    _toml(d, models["binary"])
    return ["check", "-o", "nandoc.toml"]


def _validation(d: Path, models: dict[str, Path]) -> list[str]:
    _data(d)
    write_csv(d / "v.csv", HEADER, healthy_rows(10))
    return ["check", "-c", str(_toml(d, models["binary"], 'validation_path = "v.csv"\n')),
            "-o", str(d / "v.csv")]


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def results(models, tmp_path_factory):
    jobs = {}
    for case in CASES:
        d = tmp_path_factory.mktemp(case.id)
        args = case.setup(d, models)
        before = {name: (d / name).read_bytes() for name in case.protected}
        jobs[case.id] = (args, d, before)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {cid: pool.submit(_run, args, d) for cid, (args, d, _) in jobs.items()}
        return {cid: (f.result(), jobs[cid][1], jobs[cid][2]) for cid, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_output_that_would_replace_an_input_is_refused(case: Case, results):
    res, d, before = results[case.id]
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err, res.stdout[-2000:])
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and res.stdout == ""
    for phrase in case.phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"
    for name, data in before.items():
        assert (d / name).read_bytes() == data, f"{name} was changed"
    # Refused before any work: the [data] source file was never imported, nothing was written.
    assert not (d / "imported.mark").exists()
    assert not list(d.glob(".*.tmp"))


# -- the library function the CLI and the callback share --------------------------------------


def test_guard_outputs_sees_through_symlinks_and_hard_links(tmp_path):
    data = _write(tmp_path / "data.csv", "a\n1\n")
    folder = tmp_path / "sub"
    folder.mkdir()
    via_dots = folder / ".." / "data.csv"
    link = _symlink(tmp_path, data, "link.json")
    hard = _hardlink(tmp_path, data, "hard.json")
    for out in (data, via_dots, link, hard):
        with pytest.raises(OutputPathError, match="is the training data file"):
            guard_outputs({"--output": out}, {"the training data file": data})
    # A symlink to a file that does not exist yet, whose target is an input path.
    dangling = _symlink(tmp_path, tmp_path / "later.csv", "dangling.json")
    with pytest.raises(OutputPathError, match="is the validation data file"):
        guard_outputs({"--output": dangling},
                      {"the validation data file": tmp_path / "later.csv"})
    assert same_file(hard, data) and not same_file(tmp_path / "other.json", data)
    guard_outputs({"--output": tmp_path / "report.json", "--plot": None},
                  {"the training data file": data, "the model file": None})


def test_guard_outputs_refuses_missing_or_unwritable_folders(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist") as info:
        guard_outputs({"--plot": tmp_path / "nope" / "p.png"}, {})
    assert isinstance(info.value, NandocError) and isinstance(info.value, ValueError)
    blocker = _write(tmp_path / "file", "x")
    with pytest.raises(OutputPathError, match="which is not a folder"):
        guard_outputs({"--output": blocker / "r.json"}, {})
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputPathError, match="not writable"):
            guard_outputs({"--output": locked / "r.json"}, {})


def test_replaceable_report_only_for_nandoc_reports(tmp_path):
    assert replaceable_report(tmp_path / "absent.json")
    assert replaceable_report(_write(tmp_path / "empty.json", ""))
    assert replaceable_report(_write(tmp_path / "old.json",
                                     '{"nandoc": "0.1.0", "schema_version": 1}'))
    assert not replaceable_report(_write(tmp_path / "other.json", '{"epochs": 3}'))
    assert not replaceable_report(_write(tmp_path / "notes.txt", "my notes"))
    assert not replaceable_report(tmp_path)


# -- NanDoctor(report_path=...) is checked when the callback is made, not at the NaN ---------


def test_nandoctor_refuses_a_bad_report_path_at_construction(tmp_path):
    from nandoc.keras import NanDoctor

    with pytest.raises(ValueError, match="does not exist"):
        NanDoctor(report_path=tmp_path / "missing" / "r.json")
    assert not (tmp_path / "missing").exists()
    notes = _write(tmp_path / "notes.json", '{"mine": true}')
    with pytest.raises(ValueError, match="not a nandoc report"):
        NanDoctor(report_path=notes)
    losses = _write(tmp_path / "losses.py", "X = 1\n")
    with pytest.raises(ValueError, match=r"is the file sources\[0\]"):
        NanDoctor(report_path=_hardlink(tmp_path, losses, "report.json"), sources=[losses])
    assert losses.read_text() == "X = 1\n" and notes.read_text() == '{"mine": true}'
    _write(tmp_path / "previous.json", '{"nandoc": "0.1.0", "schema_version": 1}')
    assert NanDoctor(report_path=tmp_path / "previous.json").report_path is not None
    assert NanDoctor(report_path=None).report_path is None


def test_nandoctor_does_not_write_over_a_file_that_appeared_after_construction(tmp_path):
    """publish() checks again: the path is replaced only by a nandoc report."""
    import io

    import keras
    import numpy as np

    from nandoc.keras import NanDoctor

    path = tmp_path / "r.json"
    doctor = NanDoctor(report_path=path, stream=io.StringIO())
    path.write_text("written by someone else meanwhile")
    x = np.ones((16, 3), dtype="float32")
    x[5, 1] = np.nan
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((16, 1)), batch_size=8, epochs=1, verbose=0, callbacks=[doctor])
    assert doctor.report is not None  # the NaN was seen and diagnosed
    assert path.read_text() == "written by someone else meanwhile"
    assert "the report was not saved" in doctor.stream.getvalue()


def test_nandoctor_writes_an_html_report_and_may_replace_its_own(tmp_path):
    """report_path="….html": the page, not JSON; a page nandoc wrote before may be replaced, a
    page someone else wrote may not."""
    import io

    import keras
    import numpy as np

    from nandoc.keras import NanDoctor

    path = tmp_path / "nan.html"
    x = np.ones((16, 3), dtype="float32")
    x[5, 1] = np.nan
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    for _ in range(2):  # the second run replaces the first run's page
        doctor = NanDoctor(report_path=path, stream=io.StringIO())
        model.fit(x, np.zeros((16, 1)), batch_size=8, epochs=1, verbose=0, callbacks=[doctor])
        page = path.read_text(encoding="utf-8")
        assert page.lstrip().lower().startswith("<!doctype html")
        assert 'id="finding-1"' in page and 'data-cause="data-nonfinite"' in page
    other = tmp_path / "index.html"
    other.write_text("<!doctype html><title>my notes</title>")
    with pytest.raises(ValueError, match="index.html"):
        NanDoctor(report_path=other)


def test_a_side_output_that_fails_late_never_loses_the_report(tmp_path, capsys):
    """A plot or TensorBoard folder that becomes unwritable during a long replay: the report
    is still written (stdout here), the failure is said after it, and the exit code is 2."""
    import typer

    from nandoc.cli.output import finish, write_plot
    from nandoc.core.finding import FailOn
    from nandoc.core.report import Report
    from nandoc.render import NORMAL, Format

    report = Report.build("replay", "0", [], extra={"tensorboard_error": "Could not write the "
                                                    "TensorBoard events to tb (disk full)."})
    gone = tmp_path / "gone"
    gone.mkdir()
    plot = gone / "p.svg"
    gone.rmdir()  # the folder was checked before the run, and removed during it
    message = write_plot(report, plot)
    assert message is not None and "Could not write the plot to" in message
    with pytest.raises(typer.Exit) as exited:
        finish(report, Format.JSON, None, FailOn.ERROR, NORMAL, "", (message,))
    out, err = capsys.readouterr()
    assert exited.value.exit_code == 2
    assert '"command": "replay"' in out  # the report came first, whole
    assert err.count("nandoc: error: ") == 2 and "disk full" in err and "--plot" in err
