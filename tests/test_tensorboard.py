"""TensorBoard events from a real watched run: replay (in process and through the CLI) and the
NanDoctor callback under a real `model.fit` write per-step scalars and, at the first non-finite
step, the text summaries that say where and why; the events are read back with TensorBoard's
own EventAccumulator."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nandoc.drivers.replay import replay
from tests.test_replay import cfg, regression_csv

pytest.importorskip("tensorboard")

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
TEXT = ("nandoc/first_nonfinite", "nandoc/finding")


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0,
                                                      "histograms": 0})
    acc.Reload()
    return acc


def scalar_steps(acc, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def text_of(acc, tag: str) -> tuple[int, str]:
    [event] = acc.Tensors(tag)
    return event.step, event.tensor_proto.string_val[0].decode()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((3,)),  # named: Keras numbers unnamed layers per session
                          keras.layers.Dense(8, activation="relu", name="dense"),
                          keras.layers.Dense(1, name="head")])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    path = tmp_path_factory.mktemp("tb") / "reg.keras"
    m.save(path)
    return path


def test_replay_writes_per_step_scalars_and_the_finding_at_the_nan(tmp_path, model):
    data = regression_csv(tmp_path / "d.csv", nan_row=70)  # batch 3 of epoch 1
    folder = tmp_path / "runs" / "nandoc"  # created, with its parent
    report = replay(cfg(model, data), tensorboard=folder, verify_fixes=False)
    ran = report.extra["replay"]["steps_ran"]
    assert ran == 3 and report.extra["replay"]["stopped_by"] == "nan"
    acc = events(folder)
    layers = report.extra["replay"]["series"]["layer_grad_norm"]["layers"]
    assert layers == ["dense", "head"]
    tags = ["nandoc/loss", "nandoc/grad_norm"] + [f"nandoc/layer_grad_norm/{n}" for n in layers]
    assert sorted(acc.Tags()["scalars"]) == sorted(tags)
    for tag in tags:
        assert scalar_steps(acc, tag) == list(range(1, ran + 1))
    losses = [e.value for e in acc.Scalars("nandoc/loss")]
    assert losses == pytest.approx(report.extra["replay"]["series"]["loss"])
    # The NaN input reaches the first layer's kernel gradient at the failing step.
    assert np.isnan(acc.Scalars("nandoc/layer_grad_norm/dense")[-1].value)
    assert sorted(acc.Tags()["tensors"]) == sorted(TEXT)
    step, first = text_of(acc, "nandoc/first_nonfinite")
    assert step == 3 and "**where**: data" in first and "70" in first
    step, finding = text_of(acc, "nandoc/finding")
    top = report.findings[0]
    assert step == 3 and f"**cause**: {top.cause}" in finding and top.fix[:30] in finding
    # The failing batch's activations, per layer, at the failing step (the last finite weights:
    # the NaN row's activations are not finite, so each histogram counts the other rows').
    tags = sorted(acc.Tags()["histograms"])
    assert tags == [f"nandoc/activations/{n}" for n in layers]
    for tag in tags:
        [event] = acc.Histograms(tag)
        value = event.histogram_value
        assert event.step == 3 and value.num > 0 and sum(value.bucket) == value.num
        assert value.min <= value.max and len(value.bucket_limit) == 30


def test_a_healthy_replay_writes_scalars_and_no_finding(tmp_path, model):
    folder = tmp_path / "tb"
    report = replay(cfg(model, regression_csv(tmp_path / "d.csv"), epochs=1),
                    tensorboard=folder)
    assert report.extra["replay"]["stopped_by"] == "done"
    assert "failing_batch" not in report.extra
    acc = events(folder)
    assert scalar_steps(acc, "nandoc/loss") == list(range(1, 9))
    assert scalar_steps(acc, "nandoc/layer_grad_norm/head") == list(range(1, 9))
    assert all(np.isfinite(e.value) for e in acc.Scalars("nandoc/grad_norm"))
    assert acc.Tags()["tensors"] == [] and acc.Tags()["histograms"] == []


def test_a_replay_resumed_from_a_checkpoint_writes_the_original_runs_global_steps(tmp_path):
    """The where-trap sample from its epoch-65 checkpoint: the events' steps are the original
    run's, so the NaN lands at the same x as in the user's own curves (and a full replay's)."""
    from nandoc.config import load_config
    from nandoc.loading.checkpoint import resolve
    from tests.conftest import SAMPLES

    where = SAMPLES / "where_trap_loss"
    folder = tmp_path / "tb"
    report = replay(load_config(where / "nandoc.toml"), verify_fixes=False, tensorboard=folder,
                    resume=resolve(where / "epoch65.keras", 66, None))
    summary, first = report.extra["replay"], report.first_nonfinite
    per_epoch, start = summary["steps_per_epoch"], summary["from"]["global_step"]
    assert per_epoch == 75 and start == 65 * 75 + 1 and first.epoch == 66
    failing = (first.epoch - 1) * per_epoch + first.step  # the report's global step
    assert failing == summary["series"]["step"][-1]
    acc = events(folder)
    for tag in acc.Tags()["scalars"]:
        assert scalar_steps(acc, tag) == list(range(start, failing + 1)), tag
    assert not np.isfinite(acc.Scalars("nandoc/grad_norm")[-1].value)  # the NaN, at `failing`
    step, text = text_of(acc, "nandoc/first_nonfinite")
    assert step == failing and f"**epoch**: {first.epoch}" in text
    assert text_of(acc, "nandoc/finding")[0] == failing
    assert {e.step for tag in acc.Tags()["histograms"] for e in acc.Histograms(tag)} == \
        {failing}


def test_global_steps_number_a_replay_log_by_epoch_and_step_and_the_callbacks_from_1():
    from nandoc.core.records import StepLog
    from nandoc.watch.tensorboard import failing_global_step, global_steps

    # resumed at epoch 3, step 4 of 5-step epochs, failing at epoch 4 step 2
    log = StepLog(steps_per_epoch=5)
    for epoch, step in [(3, 4), (3, 5), (4, 1), (4, 2)]:
        log.record(epoch, step, 1.0)
    log.stopped_by = "nan"
    assert global_steps(log) == [14, 15, 16, 17]
    assert failing_global_step(log, 7) == 17  # the log's own numbering wins
    log.trim(1, 2)  # rows let go keep their numbers
    assert global_steps(log) == [14, 16, 17]
    # the callback's log has no steps per epoch: rows count from 1, its failing step is kept
    callback = StepLog()
    for step in range(1, 7):
        callback.record(2, step, 1.0)
    callback.stopped_by = "nan"
    callback.trim(2, 2)
    assert global_steps(callback) == [1, 2, 5, 6]
    assert failing_global_step(callback, 6) == 6
    callback.stopped_by = "done"
    assert failing_global_step(log, None) is None


def test_the_callback_writes_the_loss_and_the_finding_under_fit(tmp_path):
    from nandoc.keras import NanDoctor
    from tests.test_callback import data, mlp

    x, y = data(nan_row=101)
    folder = tmp_path / "tb"
    doctor = NanDoctor(report_path=None, data=(x, y), verbose=False, tensorboard_dir=folder)
    model = mlp()
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[doctor])
    failing = doctor.first_nonfinite["global_step"]
    assert failing == 7  # row 101 is in the 7th batch of 16, unshuffled
    acc = events(folder)
    assert acc.Tags()["scalars"] == ["nandoc/loss"]  # fit shows the loss, not the gradients
    assert scalar_steps(acc, "nandoc/loss") == list(range(1, failing + 1))
    step, finding = text_of(acc, "nandoc/finding")
    assert step == failing and "data-nonfinite" in finding
    assert text_of(acc, "nandoc/first_nonfinite")[0] == failing
    fb = doctor.report.extra["failing_batch"]
    assert (fb["epoch"], fb["step"]) == (1, 7) and fb["rows"] == [101]
    assert [entry["layer"] for entry in fb["layers"]] == [layer.name for layer in model.layers]
    assert fb["layers"][0]["finite_fraction"] < 1.0

    healthy = tmp_path / "healthy"
    doctor = NanDoctor(report_path=None, verbose=False, tensorboard_dir=healthy)
    x, y = data()
    mlp().fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[doctor])
    acc = events(healthy)
    assert scalar_steps(acc, "nandoc/loss") == list(range(1, 9))
    assert acc.Tags()["tensors"] == []


def test_the_callback_refuses_a_file_as_its_folder(tmp_path):
    from nandoc.keras import NanDoctor

    file = tmp_path / "events.txt"
    file.write_text("mine")
    with pytest.raises(ValueError, match="is not a folder"):
        NanDoctor(report_path=None, tensorboard_dir=file)
    assert file.read_text() == "mine"


# -- the CLI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]


def _cases(d: Path, model: Path) -> list[Case]:
    data = regression_csv(d / "d.csv", nan_row=70)
    (d / "taken").write_text("not a folder")
    base = ("replay", str(model), str(data), "--target", "y", "--epochs", "1",
            "--no-verify-fixes", "-q")
    return [Case("writes", (*base, "--tensorboard", str(d / "new" / "tb"))),
            Case("file", (*base, "--tensorboard", str(d / "taken"))),
            Case("input", (*base, "--tensorboard", str(model)))]


@pytest.fixture(scope="module")
def cli(tmp_path_factory, model) -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    d = tmp_path_factory.mktemp("tb-cli")
    cases = _cases(d, model)

    def run(case: Case) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nandoc", *case.args], cwd=d, env=ENV,
                              capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(len(cases)) as pool:
        return d, dict(zip([c.id for c in cases], pool.map(run, cases), strict=True))


def test_cli_replay_writes_the_events_into_a_new_folder(cli):
    d, results = cli
    r = results["writes"]
    assert r.returncode == 1, r.stderr  # an error finding
    acc = events(d / "new" / "tb")
    assert scalar_steps(acc, "nandoc/grad_norm") == [1, 2, 3]
    assert text_of(acc, "nandoc/finding")[0] == 3


@pytest.mark.parametrize("case, phrase", [("file", "is not a folder"),
                                          ("input", "is the model file")])
def test_cli_refuses_a_bad_folder_before_any_work(cli, case, phrase):
    d, results = cli
    r = results[case]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("nandoc: error: --tensorboard") and phrase in r.stderr
    assert (d / "taken").read_text() == "not a folder"
