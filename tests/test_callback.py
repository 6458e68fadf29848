"""NanDoctor inside an ordinary `model.fit`: it catches the first non-finite step, keeps the
weights finite, explains the cause on the failing batch, and stays out of the way when training
is healthy. One subprocess test runs it under a MirroredStrategy."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nandoc.keras import NanDoctor

HERE = Path(__file__).resolve().parent


def mlp(lr: float = 1e-3, loss: str = "binary_crossentropy", optimizer: str = "adam"):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid"
                                                 if loss == "binary_crossentropy" else None)])
    opt = keras.optimizers.Adam(lr) if optimizer == "adam" else keras.optimizers.SGD(lr)
    model.compile(optimizer=opt, loss=loss)
    return model


def data(n=256, nan_row=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    if nan_row is not None:
        x[nan_row - 1, 1] = np.nan
    return x, y


def finite(model) -> bool:
    return all(bool(np.isfinite(w).all()) for w in model.get_weights())


def test_a_nan_row_is_caught_in_an_ordinary_fit_and_explained(tmp_path):
    x, y = data(nan_row=101)
    model = mlp()
    out = io.StringIO()
    doctor = NanDoctor(report_path=tmp_path / "nandoc-report.json", data=(x, y), stream=out)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[doctor])
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    assert finite(model)  # the last finite weights were put back (TerminateOnNaN leaves NaN)
    top = doctor.report.findings[0]
    assert top.cause == "data-nonfinite" and top.location.column == "x1"
    assert top.location.rows == (101,)  # the user's row, although fit shuffled
    info = doctor.first_nonfinite
    assert info["epoch"] == 1 and 1 <= info["step"] <= 16 and info["where"] == "data"
    assert info["weights_restored"] is True
    batch = doctor.report.extra["failing_batch"]  # in the JSON report too, for the plots
    assert (batch["epoch"], batch["step"]) == (info["epoch"], info["step"])
    assert batch["rows"] == [101] and len(batch["layers"]) == len(model.layers)
    saved = json.loads((tmp_path / "nandoc-report.json").read_text())
    assert saved["failing_batch"] == batch
    assert saved["command"] == "callback" and saved["findings"][0]["cause"] == "data-nonfinite"
    assert saved["first_nonfinite"]["epoch"] == 1
    printed = out.getvalue()
    assert printed.startswith("nandoc: non-finite training step at epoch 1")
    assert "Most likely root cause: data-nonfinite" in printed
    assert model.train_function is doctor._original  # fit's own function is back


def test_without_the_data_rows_count_within_the_batch_and_check_every_is_exact(tmp_path):
    x, y = data(nan_row=51)
    model = mlp()
    doctor = NanDoctor(report_path=None, verbose=False, check_every=4)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, callbacks=[doctor])
    info = doctor.first_nonfinite
    assert (info["epoch"], info["step"]) == (1, 4)  # rows 49-64 are batch 4, found exactly
    assert doctor.report.findings[0].location.rows == (3,)  # row 51 is the batch's 3rd
    assert finite(model) and not list(tmp_path.iterdir())


def test_restore_goes_on_training_from_finite_weights(tmp_path):
    x, y = data(nan_row=101)
    model = mlp()
    doctor = NanDoctor(on_nan="restore", report_path=None, stream=io.StringIO(),
                       max_restores=2, snapshot_every=2)
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[doctor])
    # the NaN row comes back every epoch: two restores, then the third NaN stops training
    assert doctor.restores == 2 and len(history.history["loss"]) == 3
    assert finite(model) and np.isfinite(history.history["loss"][1])
    assert doctor.report.findings[0].cause == "data-nonfinite"  # explained once


def test_an_overflowing_update_is_blamed_on_the_step_size():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 3)).astype("float32")
    y = (x @ np.array([1.0, 2.0, 3.0]) * 1e3).astype("float32")
    model = mlp(lr=1e6, loss="mse", optimizer="sgd")
    doctor = NanDoctor(report_path=None, stream=io.StringIO())
    model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[doctor])
    assert doctor.first_nonfinite["where"] == "update" and finite(model)
    causes = [f.cause for f in doctor.report.findings]
    assert causes[0] in ("learning-rate-too-high", "exploding-gradients"), causes
    assert "learning rate 1e+06" in doctor.report.findings[0].evidence


def test_healthy_training_is_left_alone(tmp_path):
    x, y = data()
    model = mlp()
    out = io.StringIO()
    doctor = NanDoctor(report_path=tmp_path / "r.json", stream=out)
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[doctor])
    assert len(history.history["loss"]) == 2 and doctor.report is None
    assert out.getvalue() == "" and not (tmp_path / "r.json").exists()
    again = model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[doctor])
    assert len(again.history["loss"]) == 1  # reused: same model, same compiled function


def test_a_fit_that_raised_leaves_nothing_behind():
    import keras

    x, y = data()
    model = mlp()

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    doctor = NanDoctor(report_path=None, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[doctor, Boom()])
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # no NanDoctor now
    assert list(history.history) == ["loss"]  # the flag never leaks into the logs
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[doctor])
    assert model.train_function is doctor._original


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="on_nan"):
        NanDoctor(on_nan="ignore")
    with pytest.raises(ValueError, match="check_every"):
        NanDoctor(check_every=0)


def test_under_a_mirrored_strategy(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(HERE.parent)}
    res = subprocess.run([sys.executable, str(HERE / "callback_mirrored.py"),
                          str(tmp_path / "report.json")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["replicas"] == 2 and doc["epochs_run"] == 1 and doc["weights_finite"]
    assert doc["cause"] == "data-nonfinite" and doc["rows"] == [101]
    assert doc["first_nonfinite"]["where"] == "data"
    assert json.loads((tmp_path / "report.json").read_text())["findings"][0]["location"][
        "rows"] == [101]


def _exploding(n: int = 64):
    """A linear model under SGD past its stable learning rate: the loss overflows to inf after
    a few epochs (8 steps each), as in tests/test_checkpoint_replay.py."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=2.5, momentum=0.5), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).round(4).astype("float32")
    return model, x, (x.sum(axis=1) * 3).round(4).astype("float32")


def test_the_last_finite_checkpoint_replays_to_the_nan(tmp_path):
    """checkpoint_path: the last finite state (weights and momentum) is saved at the NaN with
    its epoch and step; `replay --from` it reaches a NaN within the first replayed steps."""
    from nandoc.config import load_config
    from nandoc.drivers.replay import replay
    from nandoc.loading.checkpoint import resolve, sidecar
    from tests.conftest import write_csv

    model, x, y = _exploding()
    ckpt = tmp_path / "last_finite.keras"
    out = io.StringIO()
    doctor = NanDoctor(checkpoint_path=ckpt, report_path=tmp_path / "r.json", snapshot_every=3,
                       stream=out)
    model.fit(x, y, batch_size=8, epochs=30, shuffle=False, verbose=0, callbacks=[doctor])
    first = doctor.first_nonfinite
    assert first is not None and first["epoch"] >= 2
    saved = doctor.checkpoint
    assert saved is not None and ckpt.is_file() and first["checkpoint"] == saved
    side = json.loads(sidecar(ckpt).read_text())
    assert (side["epoch"], side["step"]) == (saved["epoch"], saved["step"])
    # the kept state is at most snapshot_every steps before the failing one
    failing = (first["epoch"] - 1) * 8 + first["step"]
    assert 0 < failing - saved["global_step"] + 1 <= 3
    assert "--from" in out.getvalue() and str(ckpt) in out.getvalue()
    assert json.loads((tmp_path / "r.json").read_text())["first_nonfinite"]["checkpoint"][
        "epoch"] == saved["epoch"]
    # the same data, in fit's order (shuffle off), for replay
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"],
              [[*map(float, row), float(t)] for row, t in zip(x, y, strict=True)])
    (tmp_path / "nandoc.toml").write_text(
        '[data]\npath = "d.csv"\ntarget = "y"\nvalidation_split = 0\n'
        '[train]\nbatch_size = 8\nepochs = 30\nshuffle = false\n', encoding="utf-8")
    report = replay(load_config(tmp_path / "nandoc.toml"), verify_fixes=False,
                    resume=resolve(ckpt, None, None))  # the sidecar says where
    again = report.first_nonfinite
    assert again is not None, report.extra["replay"]
    assert report.extra["replay"]["from"]["global_step"] == saved["global_step"]
    assert report.extra["replay"]["steps_ran"] <= 8  # within the first replayed steps
    assert (again.epoch, again.step) == (first["epoch"], first["step"])
    # the checkpoint is NanDoctor's own: a later fit may replace it, another file it may not
    NanDoctor(checkpoint_path=ckpt, report_path=None)


def test_checkpoint_path_is_checked_at_construction(tmp_path):
    mine = tmp_path / "mine.keras"
    mine.write_bytes(b"the user's model")
    with pytest.raises(ValueError, match="NanDoctor did not write"):
        NanDoctor(checkpoint_path=mine, report_path=None)
    with pytest.raises(ValueError, match="must end in .keras"):
        NanDoctor(checkpoint_path=tmp_path / "x.h5", report_path=None)
    with pytest.raises(ValueError, match="does not exist|folder"):
        NanDoctor(checkpoint_path=tmp_path / "no" / "x.keras", report_path=None)
    assert mine.read_bytes() == b"the user's model"


WORKER = """
import io, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
index, ports = int(sys.argv[1]), sys.argv[2].split(",")
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                      "task": {"type": "worker", "index": index}})
import keras, numpy as np, tensorflow as tf
from nandoc.keras import NanDoctor
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    out = io.StringIO()
    doctor = NanDoctor(report_path=None, stream=out)  # in the scope: it can tell
try:
    model.fit(np.ones((64, 3)), np.ones((64, 1)), epochs=1, verbose=0, callbacks=[doctor])
    fit = "ok"
except Exception as exc:
    fit = type(exc).__name__
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "printed": out.getvalue(),
                  "fit": fit}))
"""


def test_under_a_multi_worker_strategy_it_says_it_cannot_help():
    """Two local workers: Keras 3's fit does not support MultiWorkerMirroredStrategy; NanDoctor,
    made in the strategy's scope, says so in one line and stays out of the way."""
    import socket
    from concurrent.futures import ThreadPoolExecutor

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(str(s.getsockname()[1]))
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parent))

    def worker(i: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", WORKER, str(i), ",".join(ports)], env=env,
                              capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(worker, range(2)))
    for res in results:
        assert res.returncode == 0, res.stderr[-2000:]
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        assert doc["replicas"] == 2
        lines = doc["printed"].strip().splitlines()
        assert len(lines) == 1 and "MultiWorkerMirroredStrategy" in lines[0]
        assert "nandoc replay" in lines[0] and "MirroredStrategy on one machine" in lines[0]
        # Keras' own fit fails under it (before any callback hook: not NanDoctor's doing)
        assert doc["fit"] == "ValueError"
