"""The user's code inside nandoc's process: what it prints never reaches the report on stdout,
a file that calls exit()/sys.exit()/os._exit() is one paragraph and exit 2, SIGTERM gives the
partial report and exit 143, and a report says what it did not check (no model; a model saved
without compile()).

The CLI runs are real `python -m nandoc` processes (each imports TensorFlow), run a few at a
time in one module fixture; the scope of a report is also tested in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import healthy_rows, write_csv

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
HEADER = ["a", "b", "c", "label"]

# A custom-objects file that prints at import, from Python on every call, and natively (tf.print
# to sys.stdout, written by TensorFlow's kernel to file descriptor 1) on every compiled step.
LOUD = """\
import sys

import keras
import tensorflow as tf

print("LOUD MODULE BODY")


def loud_bce(y_true, y_pred):
    print("LOUD LOSS CALLED")
    tf.print("LOUD NATIVE STEP", output_stream=sys.stdout)
    return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
"""

EXITS = {
    "exit_at_import.py": "import keras\n\nexit(3)\n",
    "os_exit_at_import.py": "import os\n\nimport keras\n\nos._exit(3)\n",
    "sys_exit_in_loss.py": ("import sys\n\nimport keras\n\n\ndef loud_bce(y_true, y_pred):\n"
                            "    sys.exit(3)\n"),
    "os_exit_in_loss.py": ("import os\n\nimport keras\n\n\ndef loud_bce(y_true, y_pred):\n"
                           "    os._exit(3)\n"),
}


def loud_bce(y_true, y_pred):  # saved by name in the model; the files above define it
    import keras

    return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A model compiled with `loud_bce`, one saved without compile(), the data, the files."""
    import keras

    d = tmp_path_factory.mktemp("user_code")
    keras.utils.set_random_seed(0)

    def mlp():
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                                 keras.layers.Dense(1, activation="sigmoid")])

    m = mlp()
    m.compile(optimizer="adam", loss=loud_bce)
    m.save(d / "loud.keras")
    mlp().save(d / "uncompiled.keras")
    write_csv(d / "data.csv", HEADER, healthy_rows(120))
    (d / "loud.py").write_text(LOUD)
    for name, text in EXITS.items():
        (d / name).write_text(text)
    return d


@dataclass(frozen=True)
class Run:
    id: str
    args: tuple[str, ...]


LOUD_ARGS = ("loud.keras", "data.csv", "--target", "label", "--custom-objects", "loud.py")
RUNS = [
    Run("check-json", ("check", *LOUD_ARGS, "--format", "json")),
    Run("check-junit", ("check", *LOUD_ARGS, "--format", "junit", "--steps", "3")),
    Run("replay-json", ("replay", *LOUD_ARGS, "--format", "json", "--epochs", "1")),
    *[Run(name, ("check", "loud.keras", "data.csv", "--target", "label", "--custom-objects",
                 name, "--format", "json")) for name in EXITS],
    Run("uncompiled-check", ("check", "uncompiled.keras", "data.csv", "--target", "label",
                             "--format", "json")),
    Run("uncompiled-replay", ("replay", "uncompiled.keras", "data.csv", "--target", "label")),
]


def _run(args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def results(folder) -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {r.id: pool.submit(_run, r.args, folder) for r in RUNS}
        return {rid: f.result() for rid, f in futures.items()}


# -- stdout carries only the report ------------------------------------------------------------


@pytest.mark.parametrize("rid", ["check-json", "replay-json"])
def test_json_on_stdout_parses_while_the_users_code_prints(rid, results):
    res = results[rid]
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)  # nothing but the report on stdout
    assert doc["command"] == rid.split("-")[0] and doc["status"] == "clean"
    # What the user's code printed went to stderr: the module body, Python's print in the loss,
    # and tf.print(output_stream=sys.stdout) from the compiled train step.
    for text in ("LOUD MODULE BODY", "LOUD LOSS CALLED", "LOUD NATIVE STEP"):
        assert text in res.stderr, (text, res.stderr[-2000:])
        assert text not in res.stdout
    assert "Traceback" not in res.stderr


def test_junit_on_stdout_parses_while_the_users_code_prints(results):
    res = results["check-junit"]
    assert res.returncode == 0, res.stderr[-3000:]
    root = ET.fromstring(res.stdout)
    assert int(root.get("tests")) >= 10 and root.get("failures") == "0"
    assert "LOUD LOSS CALLED" in res.stderr and "LOUD" not in res.stdout


# -- a file that asks to end the process ---------------------------------------------------------


@pytest.mark.parametrize("name, phrases", [
    ("exit_at_import.py", ("Importing the custom_objects file exit_at_import.py called "
                           "sys.exit(3)",)),
    ("os_exit_at_import.py", ("The custom_objects file os_exit_at_import.py called os._exit(3) "
                              "at line 5, while nandoc imported it", "nandoc stopped")),
    ("sys_exit_in_loss.py", ("The custom_objects file sys_exit_in_loss.py called sys.exit(3) at "
                             "line 7, in loud_bce() when nandoc called it", "nandoc stopped")),
    ("os_exit_in_loss.py", ("The custom_objects file os_exit_in_loss.py called os._exit(3) at "
                            "line 7, in loud_bce() when nandoc called it", "nandoc stopped")),
])
def test_a_user_file_that_exits_is_one_paragraph_and_exit_2(name, phrases, results):
    res = results[name]
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err[-2000:])  # not the file's 3
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and res.stdout == ""
    for phrase in phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"


# -- what was not checked ------------------------------------------------------------------------


def test_an_uncompiled_model_is_checked_without_the_loss_and_says_so(results):
    res = results["uncompiled-check"]
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["status"] == "clean" and "burst" not in doc
    [item] = doc["not_checked"]
    assert item.startswith("the loss: the model was saved without compile()")
    assert "model.compile(optimizer=..., loss=...)" in item


def test_replay_of_an_uncompiled_model_is_one_paragraph(results):
    res = results["uncompiled-replay"]
    err = res.stderr
    assert res.returncode == 2 and res.stdout == ""
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1, err
    assert "uncompiled.keras was saved without compile()" in err
    assert "model.compile(optimizer=..., loss=...)" in err and "Traceback" not in err


def test_a_data_only_check_does_not_call_the_model_healthy(tmp_path):
    from nandoc.config import Config
    from nandoc.drivers.check import check
    from nandoc.render import Format, render

    data = write_csv(tmp_path / "data.csv", HEADER, healthy_rows())
    report = check(Config(data_path=data, target=("label",)))
    assert report.status == "clean" and report.exit_code(report_fail_on()) == 0
    assert [s.split(":")[0] for s in report.not_checked] == ["the model"]
    text = render(report, Format.TEXT)
    first = text.splitlines()[0]
    assert first == "✔ No NaN risk found in what was checked; not checked: the model."
    assert "not checked  the model: no [model] path or MODEL argument was given" in text
    quiet = render(report, Format.TEXT, verbosity=-1)
    assert quiet.strip() == first
    doc = json.loads(render(report, Format.JSON))
    assert doc["status"] == "clean" and doc["not_checked"] == list(report.not_checked)


def test_a_full_check_lists_nothing_as_not_checked(tmp_path, models):
    from nandoc.config import Config
    from nandoc.drivers.check import check
    from nandoc.render import Format, render

    data = write_csv(tmp_path / "data.csv", HEADER, healthy_rows())
    report = check(Config(model_path=models["binary"], data_path=data, target=("label",)),
                   steps=0)
    assert report.not_checked == ()
    assert render(report, Format.TEXT).startswith("✔ No NaN risk found.\n")
    assert "not_checked" not in json.loads(render(report, Format.JSON))


def test_a_model_only_check_says_the_data_was_not_checked(models):
    from nandoc.config import Config
    from nandoc.drivers.check import check

    report = check(Config(model_path=models["binary"]))
    assert [s.split(":")[0] for s in report.not_checked] == ["the data"]


def report_fail_on():
    from nandoc.core.finding import FailOn

    return FailOn.ERROR


# -- SIGTERM behaves as Ctrl-C, with exit 143 --------------------------------------------------


def test_sigterm_during_replay_writes_the_partial_report_and_exits_143(folder):
    """The loss's tf.print (on stderr, see above) says training is under way; then SIGTERM."""
    err_path = folder / "sigterm.err"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nandoc", "replay", *LOUD_ARGS, "--format", "json",
             "--epochs", "100000", "--no-verify-fixes"],
            cwd=folder, env=ENV, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            deadline = time.monotonic() + 240
            while err_path.read_text().count("LOUD NATIVE STEP") < 20:
                assert proc.poll() is None, err_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "training never started"
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 143, err_path.read_text()[-2000:]
    doc = json.loads(out)
    assert doc["replay"]["stopped_by"] == "interrupted" and doc["status"] == "clean"
    assert doc["replay"]["steps_ran"] >= 1
    assert "nandoc: interrupted; the report shows what was found so far" in err_path.read_text()
