"""Model-structure detectors on real tiny Keras models, saved and loaded back as nandoc loads
them: each fires on its pathology with the right layer, severity and numbers, and stays silent
on the healthy twin. Every model is built once per module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nandoc.checks.model.activation_loss_mismatch import activation_loss_mismatch
from nandoc.checks.model.softmax_single_unit import softmax_single_unit
from nandoc.checks.model.zero_variance_normalization import (
    zero_features,
    zero_variance_normalization,
)
from nandoc.config import Config
from nandoc.core.registry import all_checks
from nandoc.core.report import Outcome
from nandoc.engine.inputs import Inputs
from nandoc.engine.runner import run_checks
from nandoc.instrument.model_graph import activation_name
from nandoc.loading.dataset import Dataset, Split
from nandoc.loading.model import LossInfo, describe_losses

FEATURES = ("a", "b", "c")


def _dense_mlp(keras, head, loss, n_in=3):
    m = keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(4, activation="relu",
                                                                   name="hidden"), *head])
    m.compile(optimizer="adam", loss=loss)
    return m


def _nested(keras, inner_layers, loss, name="head", tail=()):
    inner = keras.Sequential([keras.Input((4,)), *inner_layers], name=name)
    x = keras.Input((3,))
    y = inner(keras.layers.Dense(4, name="trunk")(x))
    for layer in tail:
        y = layer(y)
    m = keras.Model(x, y)
    m.compile(optimizer="adam", loss=loss)
    return m


@pytest.fixture(scope="module")
def keras_mod():
    import keras

    keras.utils.set_random_seed(0)
    return keras


@pytest.fixture(scope="module")
def saved(tmp_path_factory, keras_mod):
    """name -> a loaded model; every model saved to .keras and loaded as nandoc does."""
    keras = keras_mod
    L = keras.layers
    d = tmp_path_factory.mktemp("model_checks")
    built = {
        # softmax-single-unit
        "dense1-softmax": _dense_mlp(keras, [L.Dense(1, activation="softmax", name="out")],
                                     "binary_crossentropy"),
        "nested-softmax": _nested(keras, [L.Dense(1, activation="softmax", name="prob")],
                                  "binary_crossentropy"),
        "activation-softmax": _dense_mlp(keras, [L.Dense(1, name="logit"),
                                                 L.Activation("softmax", name="act")], "mse"),
        "softmax3": _dense_mlp(keras, [L.Dense(3, activation="softmax", name="out")],
                               "sparse_categorical_crossentropy"),
        # activation-loss-mismatch
        "sigmoid-bce": _dense_mlp(keras, [L.Dense(1, activation="sigmoid", name="out")],
                                  "binary_crossentropy"),
        "linear-bce-logits": _dense_mlp(keras, [L.Dense(1, name="out")],
                                        keras.losses.BinaryCrossentropy(from_logits=True)),
        "linear-bce": _dense_mlp(keras, [L.Dense(1, name="out")], "binary_crossentropy"),
        "linear-cce": _dense_mlp(keras, [L.Dense(3, name="out")], "categorical_crossentropy"),
        "nested-linear-bce": _nested(keras, [L.Dense(1, name="logit")], "binary_crossentropy",
                                     tail=[L.Dropout(0.1, name="drop")]),
        "sigmoid-bce-logits": _dense_mlp(keras, [L.Dense(1, activation="sigmoid", name="out")],
                                         keras.losses.BinaryCrossentropy(from_logits=True)),
        "sigmoid-focal-logits": _dense_mlp(
            keras, [L.Dense(1, activation="sigmoid", name="out")],
            keras.losses.BinaryFocalCrossentropy(from_logits=True)),
    }
    # Two outputs: 'p' is linear under binary_crossentropy (a mismatch), 'r' a regression.
    x = keras.Input((3,))
    h = L.Dense(4, activation="relu")(x)
    two = keras.Model(x, {"p": L.Dense(1, name="p")(h), "r": L.Dense(1, name="r")(h)})
    two.compile(optimizer="adam", loss={"p": "binary_crossentropy", "r": "mse"})
    built["two-outputs"] = two
    out = {}
    for name, model in built.items():
        model.save(d / f"{name}.keras")
        out[name] = keras.saving.load_model(d / f"{name}.keras")
    return out


# --- softmax-single-unit ----------------------------------------------------------------------

@pytest.mark.parametrize("name, layer", [
    ("dense1-softmax", "out"),
    ("nested-softmax", "head/prob"),
    ("activation-softmax", "act"),
], ids=["softmax-single-unit-fires", "softmax-single-unit-nested-fires",
        "softmax-single-unit-activation-layer-fires"])
def test_check_softmax_single_unit_fires(saved, name, layer):
    [f] = softmax_single_unit(model=saved[name])
    assert f.cause == "softmax-single-unit" and f.severity.value == "error"
    assert f.confidence == 0.95 and f.location.kind == "layer" and f.location.layer == layer
    m = f.measured
    assert m["probe_min"] == m["probe_max"] == 1.0 and m["probe_samples"] == 8
    assert m["predict_min"] == m["predict_max"] == 1.0  # the model's own output, random batch
    assert "exactly 1 for every one" in f.evidence and "_keras_logits" in f.evidence
    assert "predicts 1 for all 8 random inputs" in f.evidence
    assert "sigmoid" in f.fix


@pytest.mark.parametrize("name", ["softmax3", "sigmoid-bce"],
                         ids=["softmax-single-unit-three-units-silent",
                              "softmax-single-unit-sigmoid-silent"])
def test_check_softmax_single_unit_silent(saved, name):
    assert list(softmax_single_unit(model=saved[name])) == []


def test_check_softmax_single_unit_capital_s(keras_mod):
    """The seed wrote Dense(1, activation="Softmax"). Keras 3 refuses that identifier, so no
    saved model carries it; a custom layer that keeps the string is still caught."""
    keras = keras_mod
    with pytest.raises(ValueError, match="Could not interpret activation function identifier"):
        keras.layers.Dense(1, activation="Softmax")

    class StringSoftmax(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.activation = "Softmax"
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return keras.ops.softmax(self.dense(x), axis=-1)

    assert activation_name(StringSoftmax()) == "softmax"
    x = keras.Input((3,))
    model = keras.Model(x, StringSoftmax(name="custom_head")(x))
    [f] = softmax_single_unit(model=model)
    assert f.location.layer == "custom_head" and f.measured["predict_max"] == 1.0


# --- activation-loss-mismatch -----------------------------------------------------------------

def _mismatch(model):
    return list(activation_loss_mismatch(model=model, loss=describe_losses(model)))


def test_check_activation_loss_mismatch_fires_linear_bce(saved):
    [f] = _mismatch(saved["linear-bce"])
    assert f.cause == "activation-loss-mismatch" and f.severity.value == "error"
    assert f.confidence == 0.85 and f.basis == "static"
    assert f.location.kind == "loss" and f.location.name == "binary_crossentropy"
    assert f.location.layer == "out"
    probe = f.measured["probe"]
    assert probe["y_pred"] == [-1.0] and probe["loss"] == pytest.approx(16.118, abs=1e-2)
    assert probe["gradient_norm"] == 0.0  # clipped: nothing to learn from
    assert "linear" in f.title and "from_logits=True" in f.fix


def test_check_activation_loss_mismatch_fires_linear_cce_with_nan(saved):
    [f] = _mismatch(saved["linear-cce"])
    assert f.severity.value == "error" and f.measured["width"] == 3
    assert np.isnan(f.measured["probe"]["loss"])  # a row summing to 0 is divided by 0
    assert "nan" in f.evidence


def test_check_activation_loss_mismatch_nested_behind_dropout(saved):
    [f] = _mismatch(saved["nested-linear-bce"])
    assert f.location.layer == "head/logit" and f.severity.value == "error"


def test_check_activation_loss_mismatch_two_outputs(saved):
    [f] = _mismatch(saved["two-outputs"])  # 'r' has mse: not a cross-entropy
    assert f.location.layer == "p" and f.measured["output"] == "p"


def test_check_activation_loss_mismatch_sigmoid_from_logits_is_info(saved):
    """Keras 3 on TensorFlow reads the sigmoid's cached logits and ignores from_logits=True."""
    [f] = _mismatch(saved["sigmoid-bce-logits"])
    assert f.severity.value == "info" and f.measured["keras_reads_cached_logits"] is True


def test_check_activation_loss_mismatch_focal_from_logits_warns(saved):
    [f] = _mismatch(saved["sigmoid-focal-logits"])
    assert f.severity.value == "warning" and f.confidence == 0.8
    assert f.measured["keras_reads_cached_logits"] is False
    assert f.measured["probe"]["loss"] > 0.01  # a perfect prediction still scores a loss


@pytest.mark.parametrize("name", ["sigmoid-bce", "softmax3", "linear-bce-logits",
                                  "dense1-softmax"],
                         ids=["activation-loss-mismatch-sigmoid-bce-silent",
                              "activation-loss-mismatch-softmax-sparse-silent",
                              "activation-loss-mismatch-linear-logits-silent",
                              "activation-loss-mismatch-softmax1-left-to-its-own-check"])
def test_check_activation_loss_mismatch_silent(saved, name):
    assert _mismatch(saved[name]) == []


def test_check_activation_loss_mismatch_ignores_custom_losses(saved):
    def my_loss(y_true, y_pred):
        return (y_true - y_pred) ** 2

    custom = [LossInfo("my_loss", my_loss, False, False, None)]
    assert list(activation_loss_mismatch(model=saved["linear-bce"], loss=custom)) == []


# --- zero-variance-normalization --------------------------------------------------------------

def _split(x, name="train"):
    n = x.shape[0]
    return Split(name, x.astype("float32"), np.zeros((n, 1), "float32"),
                 np.arange(1, n + 1), Path("data.csv"), n)


def _dataset(x, val=None):
    return Dataset(FEATURES, ("label",), _split(x), _split(val, "validation")
                   if val is not None else None, None, 1, ())


@pytest.fixture(scope="module")
def norm(tmp_path_factory, keras_mod):
    """Normalization layers adapted on data where 'b' (3.7) and 'c' (0.0) are constant."""
    keras = keras_mod
    L = keras.layers
    d = tmp_path_factory.mktemp("norm")
    rng = np.random.default_rng(0)
    adapt_x = np.stack([rng.normal(size=200), np.full(200, 3.7), np.zeros(200)], 1)
    adapt_x = adapt_x.astype("float32")

    def adapted(name):
        layer = L.Normalization(name=name)
        layer.adapt(adapt_x)
        return layer

    healthy = L.Normalization(name="norm")
    healthy.adapt(rng.normal(size=(200, 3)).astype("float32"))
    inner = keras.Sequential([keras.Input((3,)), adapted("norm"), L.Dense(2)], name="pre")
    x = keras.Input((3,))
    built = {
        "constant": keras.Sequential([keras.Input((3,)), adapted("norm"), L.Dense(1)]),
        "healthy": keras.Sequential([keras.Input((3,)), healthy, L.Dense(1)]),
        "nested": keras.Model(x, L.Dense(1)(inner(x))),
        "explicit": keras.Sequential([keras.Input((3,)), L.Normalization(
            mean=[0.0, 2.0, 0.0], variance=[1.0, 0.0, 1.0], name="norm"), L.Dense(1)]),
        "invert": keras.Sequential([keras.Input((3,)), L.Normalization(
            mean=[0.0, 2.0, 0.0], variance=[1.0, 0.0, 1.0], invert=True, name="norm")]),
    }
    out = {}
    for name, model in built.items():
        model.compile(optimizer="adam", loss="mse")
        model.save(d / f"{name}.keras")
        out[name] = keras.saving.load_model(d / f"{name}.keras")
    varying = rng.normal(size=(50, 3)).astype("float32")
    varying[:, 1] = 3.7 + rng.uniform(1.0, 2.0, size=50)  # b moves 1 to 2 off its constant
    varying[:, 2] = 0.0  # c stays at its adapt-time constant
    constant = np.stack([rng.normal(size=50), np.full(50, 3.7), np.zeros(50)], 1)
    return out, {"varying": varying, "constant": constant.astype("float32")}


def test_keras_normalization_divides_by_epsilon(norm):
    """What the module docstring says Keras 3.15 does: max(sqrt(var), 1e-7) as divisor, and
    adapt leaves round-off, not 0, on a constant 3.7 column."""
    models, _ = norm
    layer = models["constant"].get_layer("norm")
    var = np.asarray(layer.variance).reshape(-1)
    assert 0.0 < var[1] <= 1e-6 and var[2] == 0.0
    out = np.asarray(layer(np.array([[0.0, 3.7, 1.0]], "float32")))
    assert out[0, 2] == pytest.approx(1e7, rel=1e-3)
    assert list(zero_features(np.array([0.0, 1e6]), np.array([1.0, 0.25]))) == []  # 1e6 ± 0.5


def test_check_zero_variance_normalization_fires_without_data(norm):
    models, _ = norm
    [f] = zero_variance_normalization(model=models["constant"], data=None)
    assert f.cause == "zero-variance-normalization" and f.severity.value == "warning"
    assert f.location.kind == "layer" and f.location.layer == "norm"
    assert [g["index"] for g in f.measured["features"]] == [1, 2]
    assert f.measured["features"][1]["scale"] == pytest.approx(1e7)
    assert "max(sqrt(variance), 1e-7)" in f.evidence


@pytest.mark.parametrize("name, layer", [("constant", "norm"), ("nested", "pre/norm")],
                         ids=["zero-variance-normalization-data-fires",
                              "zero-variance-normalization-nested-data-fires"])
def test_check_zero_variance_normalization_errors_on_varying_data(norm, name, layer):
    models, data = norm
    ds = _dataset(data["varying"], val=data["constant"])
    [f] = zero_variance_normalization(model=models[name], data=ds)
    assert f.severity.value == "error" and f.confidence == 0.9
    assert f.location.layer == layer and f.location.column == "b"
    assert f.location.rows == tuple(range(1, 21))  # the first 20 of 50 blown-up rows
    assert f.measured["train_max_abs"] >= 1e4 and f.measured["train_blown_up_samples"] == 50
    assert f.measured["features"][0]["name"] == "b" and "rows 1, 2, 3, 4, 5 and 45 more" in \
        f.evidence
    assert f.measured["validation_max_abs"] < 10  # the constant validation data stays put
    assert "'b'" in f.title and "'c'" in f.title


def test_check_zero_variance_normalization_constant_data_stays_warning(norm):
    models, data = norm
    [f] = zero_variance_normalization(model=models["constant"], data=_dataset(data["constant"]))
    assert f.severity.value == "warning" and f.measured["train_max_abs"] < 10
    assert "hardly move off the adapt-time constant" in f.evidence


def test_check_zero_variance_normalization_explicit_variance(norm):
    models, _ = norm
    [f] = zero_variance_normalization(model=models["explicit"], data=None)
    assert [g["index"] for g in f.measured["features"]] == [1]


@pytest.mark.parametrize("name", ["healthy", "invert"],
                         ids=["zero-variance-normalization-adapted-on-varying-data-silent",
                              "zero-variance-normalization-invert-silent"])
def test_check_zero_variance_normalization_silent(norm, name):
    models, data = norm
    assert list(zero_variance_normalization(model=models[name], data=None)) == []
    assert list(zero_variance_normalization(model=models[name],
                                            data=_dataset(data["varying"]))) == []


# --- through the runner -----------------------------------------------------------------------

def test_runner_passes_model_loss_and_optional_data(norm, saved):
    models, data = norm
    specs = [s for s in all_checks() if s.id in ("softmax-single-unit", "activation-loss-mismatch",
                                                  "zero-variance-normalization")]
    assert len(specs) == 3
    inputs = Inputs(config=Config(), model=models["constant"],
                    loss=describe_losses(models["constant"]), data=_dataset(data["varying"]))
    findings, results = run_checks(inputs, specs)
    assert all(r.outcome is Outcome.RAN for r in results)
    assert [(f.check, f.severity.value) for f in findings] == [
        ("zero-variance-normalization", "error")]
    findings, _ = run_checks(Inputs(config=Config(), model=saved["dense1-softmax"],
                                    loss=describe_losses(saved["dense1-softmax"])), specs)
    assert [f.check for f in findings] == ["softmax-single-unit"]


def test_a_check_that_fails_on_a_tensorflow_error_says_its_cause_in_one_line():
    import tensorflow as tf

    from nandoc.core.registry import CheckSpec

    @tf.function
    def loss(labels, logits):  # a graph error: TensorFlow appends the node and its stack
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def probe(model):
        loss(tf.constant([2]), tf.zeros((1, 2)))
        return []

    spec = CheckSpec("probe", "a probe", ("model",), (), probe)
    _, [result] = run_checks(Inputs(config=Config(), model=object()), [spec])
    assert result.outcome is Outcome.FAILED
    assert result.message.startswith("InvalidArgumentError: Received a label value of 2")
    assert "\n" not in result.message and "Detected at node" not in result.message
