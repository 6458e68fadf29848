"""`nandoc replay --from CHECKPOINT --epoch E [--step S]`: a replay resumed from a checkpoint
visits the batches a full replay visits in epoch E and reaches the same NaN at the same epoch,
step and global step (the original run's numbers, not restarted at 1).

A tiny linear model under SGD with a learning rate past the stable one: the loss grows
geometrically and overflows to inf in epoch 5 (8 steps an epoch, shuffled with seed 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nandoc.config import load_config
from nandoc.drivers.replay import replay, save_checkpoint
from nandoc.errors import ConfigError, ModelLoadError, NandocError
from nandoc.loading.checkpoint import resolve, sidecar
from tests.conftest import REPO, SAMPLES, write_csv

TOML = """\
[model]
path = "model.keras"
[data]
path = "data.csv"
target = "y"
validation_split = 0
[train]
batch_size = 8
epochs = 30
shuffle = true
seed = 3
"""


@pytest.fixture(scope="module")
def exploding(tmp_path_factory) -> Path:
    """A folder with model.keras (SGD, momentum: optimizer state to carry), data.csv and
    nandoc.toml."""
    import keras

    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("exploding")
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=2.5, momentum=0.5), loss="mse")
    m.save(d / "model.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).round(4)
    write_csv(d / "data.csv", ["a", "b", "c", "y"],
              [[*row, round(float(row.sum()) * 3, 4)] for row in x])
    (d / "nandoc.toml").write_text(TOML, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def full(exploding):
    """The full replay, from epoch 1: where the NaN comes."""
    report = replay(load_config(exploding / "nandoc.toml"), verify_fixes=False)
    assert report.first_nonfinite is not None and report.first_nonfinite.epoch >= 3
    return report


def _where(report) -> tuple:
    f = report.first_nonfinite
    return f.epoch, f.step, f.where, f.rows, report.extra["replay"]["series"]["step"][-1]


def test_resumed_at_the_failing_epoch_reaches_the_same_nan_at_the_same_global_step(
        exploding, full):
    epoch = full.first_nonfinite.epoch
    ckpt = exploding / f"epoch{epoch - 1}.keras"
    side = save_checkpoint(load_config(exploding / "nandoc.toml"), epoch - 1, ckpt)
    assert json.loads(side.read_text())["epoch"] == epoch  # the sidecar says where it stands
    resumed = replay(load_config(exploding / "nandoc.toml"), verify_fixes=False,
                     resume=resolve(ckpt, epoch, None))
    assert _where(resumed) == _where(full)
    per_epoch = full.extra["replay"]["steps_per_epoch"]
    # only the failing epoch's steps ran, numbered from the original run's start
    assert resumed.extra["replay"]["steps_ran"] == full.first_nonfinite.step
    assert resumed.extra["replay"]["series"]["step"][0] == (epoch - 1) * per_epoch + 1
    assert resumed.extra["failing_batch"]["epoch"] == epoch
    start = resumed.extra["replay"]["from"]
    assert start["optimizer_state"] == "from the checkpoint" and not start["weights_only"]
    assert start["global_step"] == (epoch - 1) * per_epoch + 1
    # the report's first non-finite value carries the global step, the same in both runs
    failing = full.first_nonfinite.to_dict()["global_step"]
    assert resumed.first_nonfinite.to_dict()["global_step"] == failing
    assert failing == (full.first_nonfinite.epoch - 1) * per_epoch + full.first_nonfinite.step
    # the same batch, hence the same rows, as the full replay's failing step
    assert full.extra["failing_batch"]["rows"] == resumed.extra["failing_batch"]["rows"]
    # the sidecar alone says where to start
    again = replay(load_config(exploding / "nandoc.toml"), verify_fixes=False,
                   resume=resolve(ckpt, None, None))
    assert _where(again) == _where(full)


def test_a_weights_only_checkpoint_starts_the_optimizer_fresh_and_says_so(exploding, full):
    import keras

    epoch = full.first_nonfinite.epoch
    ckpt = exploding / "resume.keras"
    if not ckpt.exists():
        save_checkpoint(load_config(exploding / "nandoc.toml"), epoch - 1, ckpt)
    weights = exploding / "resume.weights.h5"
    keras.models.load_model(ckpt).save_weights(weights)
    report = replay(load_config(exploding / "nandoc.toml"), verify_fixes=False,
                    resume=resolve(weights, epoch, None))
    start = report.extra["replay"]["from"]
    assert start["weights_only"] and start["optimizer_state"].startswith("fresh")
    assert report.first_nonfinite is not None and report.first_nonfinite.epoch >= epoch


def test_bad_checkpoints_and_places_are_one_paragraph_errors(exploding, full, tmp_path):
    import keras

    cfg = load_config(exploding / "nandoc.toml")
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve(tmp_path / "missing.keras", 2, None)
    ckpt = exploding / "model.keras"
    with pytest.raises(ConfigError, match="epochs count from 1"):
        resolve(ckpt, 0, None)
    with pytest.raises(ConfigError, match="needs --epoch"):
        resolve(ckpt, None, None)
    with pytest.raises(ConfigError, match="beyond epoch 2: .* 8 steps"):
        replay(cfg, verify_fixes=False, resume=resolve(ckpt, 2, 9))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(1)])
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ModelLoadError, match="do not fit the model") as err:
        replay(cfg, verify_fixes=False, resume=resolve(tmp_path / "other.weights.h5", 2, None))
    assert "\n" not in str(err.value)
    assert issubclass(ModelLoadError, NandocError)


def test_a_mid_epoch_step_resumes_after_the_skipped_steps(exploding, full):
    """--step S: the checkpoint is the state after step S-1; the replay runs from step S."""
    from nandoc.drivers.files import load_inputs
    from nandoc.watch import loop
    from nandoc.watch.step import WatchedStep

    cfg = load_config(exploding / "nandoc.toml")
    epoch, step = full.first_nonfinite.epoch, full.first_nonfinite.step
    assert step >= 2
    inputs = load_inputs(cfg, sample=False)
    train = cfg.train
    run = loop.run(WatchedStep(inputs.model), inputs.data.train, None,
                   batch_size=train.batch_size, epochs=epoch, shuffle=True, seed=train.seed,
                   max_steps=(epoch - 1) * 8 + step - 1)
    assert run.failure is None
    ckpt = exploding / "mid.keras"
    inputs.model.save(ckpt)
    resumed = replay(cfg, verify_fixes=False, resume=resolve(ckpt, epoch, step))
    assert resumed.extra["replay"]["steps_ran"] == 1
    assert _where(resumed) == _where(full)


def test_a_fix_for_the_training_dynamics_is_tried_from_the_checkpoint(exploding, full):
    """A lower learning rate must be tried from where training resumed (the checkpoint's
    epoch, first step), through the failing epoch and one more: not from the last finite
    state, where the run is already about to overflow."""
    epoch = full.first_nonfinite.epoch
    ckpt = exploding / f"epoch{epoch - 1}.keras"
    if not ckpt.exists():
        save_checkpoint(load_config(exploding / "nandoc.toml"), epoch - 1, ckpt)
    resumed = replay(load_config(exploding / "nandoc.toml"), verify_fixes=True,
                     resume=resolve(ckpt, epoch, None))
    assert _where(resumed) == _where(full)
    lr = next(f for f in resumed.findings if f.cause == "learning-rate-too-high")
    per_epoch = full.extra["replay"]["steps_per_epoch"]
    assert lr.verified_fix is not None and lr.verified_fix.nan_free
    # the failing epoch from its first step, then one more epoch
    assert lr.verified_fix.steps_ran == 2 * per_epoch


# -- the CLI -------------------------------------------------------------------------------

@dataclass
class Case:
    args: list[str]
    code: int | None = None
    out: str = ""
    err: str = ""


ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
WHERE = SAMPLES / "where_trap_loss"


@pytest.fixture(scope="module")
def cli(exploding) -> dict[str, Case]:
    cases = {
        "where": Case(["replay", "-c", str(WHERE / "nandoc.toml"), "--from",
                       str(WHERE / "epoch65.keras"), "--epoch", "66", "-f", "json",
                       "--no-verify-fixes"]),
        "output_on_checkpoint": Case(["replay", "-c", str(exploding / "nandoc.toml"), "--from",
                                      str(exploding / "model.keras"), "--epoch", "2",
                                      "-o", str(exploding / "model.keras")]),
        "epoch_without_from": Case(["replay", "-c", str(exploding / "nandoc.toml"),
                                    "--epoch", "2"]),
        "epoch_zero": Case(["replay", "-c", str(exploding / "nandoc.toml"), "--from",
                            str(exploding / "model.keras"), "--epoch", "0"]),
    }

    def run(case: Case) -> None:
        p = subprocess.run([sys.executable, "-m", "nandoc", *case.args], capture_output=True,
                           text=True, env=ENV, cwd=REPO, timeout=300)
        case.code, case.out, case.err = p.returncode, p.stdout, p.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, cases.values()))
    return cases


def test_the_where_trap_sample_from_its_checkpoint_fails_at_epoch_66_step_66(cli):
    case = cli["where"]
    assert case.code == 1, case.err
    report = json.loads(case.out)
    first = report["first_nonfinite"]
    # the full replay's place (measured on this CPU: which residual rounds to exactly 0 is
    # the CPU's float kernels' doing), in the first replayed epoch
    assert (first["epoch"], first["step"]) == (66, 66)
    assert first["op"] == "where" and first["line"] == 15
    assert report["findings"][0]["cause"] == "where-gradient-trap"
    assert report["replay"]["steps_ran"] == 66
    assert report["replay"]["series"]["step"][-1] == 65 * 75 + 66
    assert report["replay"]["from"]["epoch"] == 66
    assert json.loads(sidecar(WHERE / "epoch65.keras").read_text())["epoch"] == 66


def test_the_checkpoint_is_an_input_and_bad_places_exit_2_without_a_traceback(cli, exploding):
    for name, needle in (("output_on_checkpoint", "the --from checkpoint"),
                         ("epoch_without_from", "give --from CHECKPOINT"),
                         ("epoch_zero", "epochs count from 1")):
        case = cli[name]
        assert case.code == 2, (name, case.err)
        assert "nandoc: error:" in case.err and needle in case.err, (name, case.err)
        assert "Traceback" not in case.err
    assert (exploding / "model.keras").stat().st_size > 1000  # not replaced by a report
