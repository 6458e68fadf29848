"""`nandoc.diagnose`: the checks on a live model and in-memory arrays, the same Report."""

from __future__ import annotations

import numpy as np
import pytest

import nandoc
from nandoc.core.report import Report
from nandoc.errors import DataError
from nandoc.render import Format, render


@pytest.fixture(scope="module")
def live():
    """Live (never saved) models: a binary MLP, an uncompiled one, a Conv1D on windows."""
    import keras

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                            keras.layers.Dense(1, activation="sigmoid")])
    mlp.compile(optimizer="adam", loss="binary_crossentropy")
    bare = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    seq = keras.Sequential([keras.Input((8, 3)), keras.layers.Conv1D(4, 3, padding="same"),
                            keras.layers.GlobalAveragePooling1D(),
                            keras.layers.Dense(1, activation="sigmoid")])
    seq.compile(optimizer="adam", loss="binary_crossentropy")
    return {"mlp": mlp, "bare": bare, "seq": seq}


def with_no_scope_limit(report: Report) -> bool:
    return report.not_checked == ()


def arrays(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, (x[:, 0] > 0).astype(float)


def test_healthy_arrays_give_a_clean_report(live):
    x, y = arrays()
    report = nandoc.diagnose(live["mlp"], x, y, validation_split=0.25)
    assert isinstance(report, Report) and report.command == "diagnose"
    assert report.status == "clean" and report.failed_checks() == []
    assert report.inputs["train_samples"] == 72 and report.inputs["validation_samples"] == 24
    assert render(report, Format.TEXT).startswith("✔ No NaN risk found.")


def test_nan_cell_is_named_by_column_and_sample(live):
    x, y = arrays()
    x[4, 1] = np.nan
    x[40, 1] = np.inf
    report = nandoc.diagnose(live["mlp"], x, y, feature_names=["a", "b", "c"])
    top = report.findings[0]
    assert top.cause == "data-nonfinite" and top.location.column == "b"
    assert top.location.rows == (5, 41) and top.location.file is None
    assert "of the arrays" in top.title


def test_dataframe_columns_become_feature_names_and_rows_can_be_given(live):
    import pandas as pd

    x, y = arrays(32)
    y[3] = 2.0  # out of [0, 1] for binary cross-entropy
    df = pd.DataFrame(x, columns=["p", "q", "r"])
    report = nandoc.diagnose(live["mlp"], df, pd.Series(y, name="churn"),
                             rows=np.arange(101, 133))
    top = report.findings[0]
    assert top.cause == "label-out-of-range" and top.location.column == "churn"
    assert top.location.rows == (104,)
    assert report.inputs["features"] == ["p", "q", "r"]


def test_windows_are_reported_by_sample(live):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8, 3))
    x[6, 2, 0] = np.nan  # one bad timestep in window 7
    report = nandoc.diagnose(live["seq"], x, np.zeros(40))
    top = report.findings[0]
    assert top.cause == "data-nonfinite" and top.location.rows == (7,)
    assert "1 of 40 rows" in top.evidence


def test_an_uncompiled_model_takes_loss_from_the_caller(live):
    x, y = arrays(32)
    without = nandoc.diagnose(live["bare"], x, y)
    reasons = {c.check: c.message for c in without.checks}
    assert "no loss= was given" in reasons["label-out-of-range"]
    # a clean verdict says that it does not cover the loss
    assert [item.split(":")[0] for item in without.not_checked] == ["the loss"]
    assert "not checked: the loss" in render(without, Format.TEXT).splitlines()[0]
    assert with_no_scope_limit(nandoc.diagnose(live["mlp"], x, y))
    y[0] = 5.0
    with_loss = nandoc.diagnose(live["bare"], x, y, loss="binary_crossentropy")
    assert with_loss.findings[0].cause == "label-out-of-range"


@pytest.mark.parametrize("x_shape, y_len, message", [
    ((10, 4), 10, "The model takes inputs of shape (None, 3) but x has shape (10, 4)"),
    ((10, 3), 9, "x has 10 samples but y has 9"),
    ((0, 3), 0, "x holds no samples"),
    ((2, 3, 4, 5), 2, "nandoc reads rows (n, features) or windows"),
])
def test_bad_arrays_are_refused_with_a_clear_message(live, x_shape, y_len, message):
    with pytest.raises(DataError) as err:
        nandoc.diagnose(live["mlp"], np.zeros(x_shape), np.zeros(y_len))
    assert message in str(err.value)
