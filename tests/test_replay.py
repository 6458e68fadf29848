"""`nandoc replay` on real tiny models: it trains like fit, stops at the first non-finite step
with the last finite state intact, localises and explains it, and proves a fix."""

from __future__ import annotations

import numpy as np
import pytest

from nandoc.config import Config, TrainConfig, load_config
from nandoc.drivers.replay import replay
from tests.conftest import SAMPLES, write_csv


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory):
    """A tiny MLP regressor compiled with plain SGD, saved once."""
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    path = tmp_path_factory.mktemp("replay") / "reg.keras"
    m.save(path)
    return path


def regression_csv(path, n=256, scale=1.0, nan_row=None, nan_col=1):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) * scale).round(4)
    rows = [[*np.round(r, 4), t] for r, t in zip(x, y)]
    if nan_row is not None:
        rows[nan_row - 1][nan_col] = "nan"
    return write_csv(path, ["a", "b", "c", "y"], rows)


def cfg(model, data, **train):
    return Config(model_path=model, data_path=data, target=("y",),
                  train=TrainConfig(**{"batch_size": 32, "epochs": 3, **train}))


def test_healthy_run_trains_the_requested_epochs_and_is_clean(tmp_path, regression_model):
    report = replay(cfg(regression_model, regression_csv(tmp_path / "d.csv")))
    summary = report.extra["replay"]
    assert summary["stopped_by"] == "done" and summary["steps_ran"] == 3 * 8
    assert report.first_nonfinite is None
    assert [f for f in report.findings if f.severity.value == "error"] == []


def test_steps_bound_the_run(tmp_path, regression_model):
    report = replay(cfg(regression_model, regression_csv(tmp_path / "d.csv")), steps=5)
    assert report.extra["replay"]["steps_ran"] == 5
    assert report.extra["replay"]["stopped_by"] == "steps"


def test_a_high_learning_rate_diverges_and_a_lower_one_is_verified(tmp_path, regression_model):
    data = regression_csv(tmp_path / "d.csv", scale=30.0)
    report = replay(cfg(regression_model, data, learning_rate=0.5, epochs=20))
    first = report.first_nonfinite.to_dict()
    assert first["epoch"] >= 1 and first["where"] in ("loss", "backward", "update", "forward")
    top = report.findings[0]
    assert top.cause in ("learning-rate-too-high", "exploding-gradients")
    verified = [f.verified_fix for f in report.findings if f.verified_fix is not None]
    assert any(v.nan_free and v.steps_ran > 0 for v in verified)
    series = report.extra["replay"]["series"]["grad_norm"]
    assert series[0] is not None


def test_a_nan_cell_stops_at_its_batch_with_the_row_and_a_verified_drop(tmp_path,
                                                                        regression_model):
    data = regression_csv(tmp_path / "d.csv", nan_row=70)  # batch 3 of epoch 1
    report = replay(cfg(regression_model, data))
    first = report.first_nonfinite.to_dict()
    assert (first["epoch"], first["step"]) == (1, 3) and 70 in first["rows"]
    [f] = [f for f in report.findings if f.cause == "data-nonfinite"]
    assert f.location.column == "b" and (f.location.epoch, f.location.step) == (1, 3)
    assert f.verified_fix is not None and f.verified_fix.nan_free
    # The failing batch, layer by layer in model order, from the pass that localised it.
    batch = report.extra["failing_batch"]
    assert (batch["epoch"], batch["step"]) == (1, 3) and 70 in batch["rows"]
    per_layer = report.extra["replay"]["series"]["layer_grad_norm"]
    assert [e["layer"] for e in batch["layers"]] == per_layer["layers"]
    assert len(per_layer["layers"]) == 2
    assert batch["layers"][0]["finite_fraction"] == pytest.approx(31 / 32)  # row 70's output
    assert all(e["max_abs"] is not None and e["max_abs"] > 0 for e in batch["layers"])
    # Per-layer gradient norms per sampled step; the NaN input's kernel gradient as null.
    assert len(per_layer["values"]) == len(report.extra["replay"]["series"]["step"]) == 3
    assert per_layer["values"][-1][0] is None and all(v > 0 for v in per_layer["values"][0])


def test_the_state_after_a_failure_is_the_last_finite_state(tmp_path, regression_model):
    """Brute-force reference: train the same batches with plain GradientTape steps up to the
    failing one; the replayed model must hold exactly those weights, not NaN."""
    import keras
    import tensorflow as tf

    from nandoc.drivers.files import load_inputs
    from nandoc.watch import loop
    from nandoc.watch.step import WatchedStep

    data = regression_csv(tmp_path / "d.csv", nan_row=70)
    inputs = load_inputs(cfg(regression_model, data))
    ref = keras.saving.load_model(regression_model)
    log = loop.run(WatchedStep(inputs.model), inputs.data.train, None, batch_size=32,
                   epochs=1, shuffle=False, seed=0)
    assert log.failure is not None and log.failure.step == 3
    x, y = inputs.data.train.x, inputs.data.train.y
    for i in range(2):  # the two finite steps
        xb, yb = x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
        with tf.GradientTape() as tape:
            loss = ref.compute_loss(x=xb, y=yb, y_pred=ref(xb, training=True))
        grads = tape.gradient(loss, ref.trainable_variables)
        ref.optimizer.apply(grads, ref.trainable_variables)
        assert log.log.loss[i] == pytest.approx(float(loss), rel=1e-5)
        norm = float(tf.linalg.global_norm(grads))
        assert log.log.grad_norm[i] == pytest.approx(norm, rel=1e-4)
    for a, b in zip(inputs.model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_where_trap_sample_stops_in_the_where_and_the_double_where_is_verified():
    # The epoch depends on the CPU's float rounding (45 on one x86 CPU, 66 on another): the
    # NaN comes at the first step where some residual rounds to exactly 0.
    report = replay(load_config(SAMPLES / "where_trap_loss" / "nandoc.toml"))
    first = report.first_nonfinite.to_dict()
    assert (first["where"], first["op"], first["line"]) == ("backward", "where", 15)
    assert 1 <= first["epoch"] <= 100 and first["step"] >= 1
    top = report.findings[0]
    assert top.cause == "where-gradient-trap" and top.location.line == 15
    assert top.verified_fix.nan_free and top.verified_fix.steps_ran > 0
    assert "double-where" in top.verified_fix.change


def test_a_loss_that_cannot_be_compiled_is_reported_not_raised():
    report = replay(load_config(SAMPLES / "sparse_events_loss" / "nandoc.toml"))
    assert report.extra["replay"]["stopped_by"] == "error"
    assert "OperatorNotAllowedInGraphError" in report.extra["replay"]["error"]
    assert report.findings[0].cause == "tensor-python-branch"


def test_validation_that_turns_nan_is_localised(tmp_path, regression_model):
    train = regression_csv(tmp_path / "t.csv")
    # A NaN target: a NaN feature could vanish in oneDNN's fused Dense+ReLU on CPU
    val = regression_csv(tmp_path / "v.csv", n=40, nan_row=5, nan_col=3)
    c = cfg(regression_model, train)
    from dataclasses import replace

    report = replay(replace(c, validation_path=val), epochs=1)
    first = report.first_nonfinite.to_dict()
    assert first["where"] == "validation" and first["epoch"] == 1
