"""Custom layers traced op by op on real batches: the op and line where a NaN is born."""

from __future__ import annotations

import textwrap

import pytest

from nandoc.config import Config
from nandoc.drivers.check import check
from nandoc.loading.custom_objects import import_source
from tests.conftest import healthy_rows, write_csv

LAYERS = textwrap.dedent('''
    import keras
    from keras import ops


    class LogFeatures(keras.layers.Layer):
        def call(self, inputs):
            return ops.log(inputs)


    class SafeLogFeatures(keras.layers.Layer):
        def call(self, inputs):
            return ops.log(ops.maximum(inputs, 1e-6))


    class RootNorm(keras.layers.Layer):
        def call(self, inputs):
            return inputs / ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True))
    ''').lstrip()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("layers")
    path = root / "layers.py"
    path.write_text(LAYERS)
    objects = import_source(path).objects
    out = {}
    for name in ("LogFeatures", "SafeLogFeatures", "RootNorm"):
        keras.utils.set_random_seed(0)
        # RootNorm gets a zero-initialised Dense: every row reaching it is all zeros, as a
        # dead ReLU layer gives
        init = "zeros" if name == "RootNorm" else "glorot_uniform"
        m = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(4, activation="relu", kernel_initializer=init),
                              objects[name](name="custom"),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="adam", loss="binary_crossentropy")
        m.save(root / f"{name}.keras")
        out[name] = root / f"{name}.keras"
    return path, out


def run(saved, tmp_path, name):
    path, models = saved
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c", "label"], healthy_rows(64))
    return check(Config(model_path=models[name], data_path=data, target=("label",),
                        custom_objects=(path,)))


def layer_errors(report, cause):
    return [f for f in report.findings if f.cause == cause and f.location.kind == "layer"
            and f.severity.value == "error"]


def test_log_of_relu_zeros_is_found_at_the_layers_line(saved, tmp_path):
    [f] = layer_errors(run(saved, tmp_path, "LogFeatures"), "unclipped-log")
    assert f.location.layer == "custom" and f.location.line == 7 and f.location.op == "Log"
    assert f.location.rows and "-inf" in f.evidence


def test_sqrt_norm_of_an_all_zero_row_is_found(saved, tmp_path):
    report = run(saved, tmp_path, "RootNorm")
    found = layer_errors(report, "division-by-zero") + layer_errors(report, "sqrt-at-zero")
    assert found and all(f.location.line == 17 for f in found)


def test_guarded_layer_stays_silent(saved, tmp_path):
    report = run(saved, tmp_path, "SafeLogFeatures")
    assert [f for f in report.findings if f.severity.value == "error"] == []
