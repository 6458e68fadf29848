"""The loss probe on real saved models whose custom losses live in real files: each measured
cause fires at the right file:line, and safe rewrites stay silent (no error)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from nandoc.config import Config
from nandoc.drivers.check import check
from nandoc.loading.custom_objects import import_source
from tests.conftest import healthy_rows, write_csv

LOSSES = {
    "where_trap": ("linear", """
        from keras import ops

        def f(x):
            return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)

        def loss(y_true, y_pred):
            x = y_pred - y_true
            return ops.mean(f(x) + f(x + 50))
        """),
    "double_where": ("linear", """
        from keras import ops

        def f(x):
            small = ops.abs(x) < 0.1
            x_safe = ops.where(small, 1.0, x)
            return ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)

        def loss(y_true, y_pred):
            x = y_pred - y_true
            return ops.mean(f(x) + f(x + 50))
        """),
    "unclipped_log": ("sigmoid", """
        from keras import ops

        def loss(y_true, y_pred):
            return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        """),
    "clipped_log": ("sigmoid", """
        from keras import ops

        def loss(y_true, y_pred):
            y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
            return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        """),
    "python_branch": ("sigmoid", """
        from keras import ops

        def loss(y_true, y_pred):
            penalty = 10
            if y_true != 0:
                out = -penalty * ops.sum(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
            else:
                out = -ops.sum(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
            return out
        """),  # noqa: E501 - the line numbers of this source are asserted below
    "sqrt_distance": ("linear", """
        from keras import ops

        def loss(y_true, y_pred):
            return ops.mean(ops.sqrt(ops.square(y_true - y_pred)))
        """),
    "sqrt_eps": ("linear", """
        from keras import ops

        def loss(y_true, y_pred):
            return ops.mean(ops.sqrt(ops.square(y_true - y_pred) + 1e-12))
        """),
    "exp_loss": ("linear", """
        from keras import ops

        def loss(y_true, y_pred):
            return ops.mean(ops.exp(y_pred - y_true))
        """),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (model path, losses.py path), built once: the model compiled with that loss."""
    import keras

    root = tmp_path_factory.mktemp("loss_probe")
    out = {}
    for name, (act, source) in LOSSES.items():
        d = root / name
        d.mkdir()
        path = d / "losses.py"
        path.write_text(textwrap.dedent(source).lstrip())
        fn = import_source(path).objects["loss"]
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1, activation=act, name="out")])
        m.compile(optimizer="adam", loss=fn)
        m.save(d / "model.keras")
        out[name] = (d / "model.keras", path)
    return out


def run(saved, tmp_path, name, regression=False):
    model, losses = saved[name]
    rows = healthy_rows(64)
    if regression:
        rows = [[a, b, c, round(a + b, 2)] for a, b, c, _ in rows]
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    return check(Config(model_path=model, data_path=data, target=("label",),
                        custom_objects=(losses,)))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def measured(report, cause):
    return [f for f in report.findings if f.cause == cause and f.basis == "measured"
            and f.severity.value == "error"]


def test_where_trap_is_confirmed_at_the_where_line(saved, tmp_path):
    report = run(saved, tmp_path, "where_trap", regression=True)
    [f] = measured(report, "where-gradient-trap")
    path = saved["where_trap"][1]
    assert f.location.line == line_of(path, "ops.where") and f.location.name == "loss"
    assert "value is finite" in f.evidence and "0 × inf = NaN" in f.evidence
    assert f.measured["value_finite"] is True
    assert report.findings[0] is f  # the root cause ranks first
    # the divisions inside the where are part of the trap, not separate findings
    assert measured(report, "division-by-zero") == []


def test_double_where_stays_silent(saved, tmp_path):
    report = run(saved, tmp_path, "double_where", regression=True)
    assert [f for f in report.findings if f.severity.value == "error"] == []


def test_unclipped_log_is_confirmed_at_a_saturated_sigmoid(saved, tmp_path):
    report = run(saved, tmp_path, "unclipped_log")
    [f] = measured(report, "unclipped-log")
    assert f.location.line == line_of(saved["unclipped_log"][1], "ops.log")
    assert "exactly 0.0 in float32" in f.evidence or "exactly 1.0 in float32" in f.evidence


def test_clipped_log_stays_silent(saved, tmp_path):
    report = run(saved, tmp_path, "clipped_log")
    assert [f for f in report.findings if f.severity.value == "error"] == []


def test_python_branch_is_confirmed_and_the_logs_found_eagerly(saved, tmp_path):
    report = run(saved, tmp_path, "python_branch")
    path = saved["python_branch"][1]
    [branch] = measured(report, "tensor-python-branch")
    assert branch.location.line == line_of(path, "if y_true != 0")
    assert "OperatorNotAllowedInGraphError" in branch.evidence
    logs = measured(report, "unclipped-log")
    assert logs and {f.location.line for f in logs} <= {
        line_of(path, "-penalty"), line_of(path, "out = -ops.sum")}


def test_sqrt_at_zero_is_a_gradient_only_nan(saved, tmp_path):
    report = run(saved, tmp_path, "sqrt_distance", regression=True)
    [f] = measured(report, "sqrt-at-zero")
    assert f.measured["phase"] == "gradient"
    assert report.failed_checks() == []


def test_sqrt_with_epsilon_stays_silent(saved, tmp_path):
    report = run(saved, tmp_path, "sqrt_eps", regression=True)
    assert measured(report, "sqrt-at-zero") == []


def test_exp_overflow_on_a_wide_linear_output(saved, tmp_path):
    report = run(saved, tmp_path, "exp_loss", regression=True)
    [f] = measured(report, "exp-overflow")
    assert f.location.op == "Exp"


def test_probe_points_cover_saturation_and_exact_targets():
    from nandoc.instrument.outputs import OutputInfo, probe_points

    sig = probe_points(OutputInfo("out", "sigmoid", 1), np.array([[0.0], [1.0]]))
    assert {0.0, 1.0} <= set(sig.y_pred[:, 0].tolist())
    lin = probe_points(OutputInfo("out", "linear", 1), np.array([[2.5], [7.0]]))
    pairs = set(zip(lin.y_true[:, 0].tolist(), lin.y_pred[:, 0].tolist()))
    assert (2.5, 2.5) in pairs and (7.0, 7.0) in pairs


def test_a_custom_metric_with_an_unclipped_log_is_found_at_its_line(tmp_path):
    import keras

    path = tmp_path / "metrics.py"
    path.write_text("from keras import ops\n\n\ndef log_score(y_true, y_pred):\n"
                    "    return ops.mean(ops.log(y_pred))\n\n\n"
                    "def safe_score(y_true, y_pred):\n"
                    "    return ops.mean(ops.log(ops.clip(y_pred, 1e-7, 1.0)))\n")
    objects = import_source(path).objects
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy",
              metrics=[objects["log_score"], objects["safe_score"]])
    m.save(tmp_path / "m.keras")
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], healthy_rows(32))
    report = check(Config(model_path=tmp_path / "m.keras", data_path=data, target=("label",),
                          custom_objects=(path,)))
    found = [f for f in report.findings if f.location.kind == "metric"
             and f.basis == "measured" and f.severity.value == "warning"]
    assert [(f.cause, f.location.line) for f in found] == [("unclipped-log", 5)]
    assert report.failed_checks() == []
