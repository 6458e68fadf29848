"""Localisation reaches what the step runs: the optimizer's update op by op, built-in layers."""

from __future__ import annotations

import numpy as np

from nandoc.config import Config
from nandoc.core.finding import FailOn
from nandoc.drivers.check import check
from tests.conftest import healthy_rows, write_csv


def test_adams_epsilon_that_is_zero_in_float16_is_found_in_the_update(tmp_path):
    """float16 weights (the "float16" policy, not mixed) with epsilon 1e-8: a weight with a zero
    gradient so far gets 0/0 in Adam's update; the logged loss stays finite."""
    import keras

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float16")
    try:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8),
                      loss="binary_crossentropy")
    finally:
        keras.config.set_dtype_policy("float32")
    model.save(tmp_path / "m.keras")
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], healthy_rows())
    report = check(Config(model_path=tmp_path / "m.keras", data_path=data, target=("label",)))
    first = report.first_nonfinite
    assert first is not None and first.where == "update" and first.op == "RealDiv"
    top = report.findings[0]
    assert (top.cause, top.location.kind, top.confirmed) == ("division-by-zero", "optimizer",
                                                            True)
    assert report.exit_code(FailOn.ERROR) == 1


def test_an_exponential_activation_in_a_recurrent_layer_is_named(tmp_path):
    """Ops inside a recurrent cell's loop are not reached op by op; the activation is named."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 1)),
                              keras.layers.SimpleRNN(4, activation="exponential", name="rnn"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    rows = [[float(v), float(v) * 0.1] for v in rng.normal(0, 200, 128)]
    data = write_csv(tmp_path / "d.csv", ["level", "target"], rows)
    report = check(_windowed(tmp_path, data))
    assert report.first_nonfinite is not None and report.first_nonfinite.layer == "rnn"
    top = report.findings[0]
    assert top.cause in ("exp-overflow", "data-unscaled") and top.confirmed
    assert any(f.cause == "exp-overflow" and f.location.layer == "rnn"
               for f in report.findings)


def _windowed(tmp_path, data):
    from nandoc.config import WindowConfig

    return Config(model_path=tmp_path / "m.keras", data_path=data, target=("target",),
                  window=WindowConfig(length=8))
