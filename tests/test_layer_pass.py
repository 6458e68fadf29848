"""Layer-by-layer passes on real batches: records against a brute-force reference, localisation
of the first non-finite value, batch selection, and the step checks firing and staying silent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nandoc.analysis.passes import layer_passes
from nandoc.core.finding import Finding, Severity
from nandoc.instrument.batches import Batch, select_batches
from nandoc.loading.dataset import Dataset, Split
from tests.conftest import write_csv

keras = pytest.importorskip("keras")
ops = keras.ops

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(16, 3)).astype("float32")
Y3 = (X3[:, :1] > 0).astype("float32")


def batch(x, y=None, name="first") -> Batch:
    x = np.asarray(x, dtype="float32")
    y = np.zeros((len(x), 1), "float32") if y is None else np.asarray(y, dtype="float32")
    return Batch(name, np.arange(len(x)), x, y, np.arange(1, len(x) + 1), "test batch")


def dataset(x, y, features=None) -> Dataset:
    x, y = np.asarray(x, "float32"), np.asarray(y, "float32")
    names = tuple(features or (f"f{i}" for i in range(x.shape[-1])))
    split = Split("train", x, y, np.arange(1, len(x) + 1), Path("data.csv"), len(x))
    return Dataset(names, ("label",), split, None, 8 if x.ndim == 3 else None, 1, ())


class Root(keras.layers.Layer):
    """sqrt of a ReLU's exact zeros: a finite forward value with an infinite gradient."""

    def call(self, x):
        return ops.sqrt(x)


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu",
                                                                   name="hidden"),
                            keras.layers.Dense(1, activation="sigmoid", name="out")], name="seq")
    seq.compile("sgd", "binary_crossentropy")

    block = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="tanh",
                                                                    name="inner")], name="block")
    i = keras.Input((3,))
    a = keras.layers.Dense(4, name="left", kernel_regularizer="l2")(i)
    b = keras.layers.Dense(4, activation="relu", name="right")(i)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    o = keras.layers.Dense(1, name="out")(block(cat))
    branch = keras.Model(i, o, name="branchy")
    branch.compile("sgd", "mse")

    conv = keras.Sequential([keras.Input((8, 3)), keras.layers.Conv1D(4, 3, name="conv"),
                             keras.layers.BatchNormalization(name="bn"),
                             keras.layers.GlobalAveragePooling1D(name="pool"),
                             keras.layers.Dense(1, name="out")], name="convbn")
    conv.compile("sgd", "mse")

    i = keras.Input((3,))
    sq = keras.Model(i, keras.layers.Dense(1, name="head")(
        ops.square(keras.layers.Dense(4, name="wide")(i))), name="squared")
    sq.compile("sgd", "mse")

    bn_first = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="bn"),
                                 keras.layers.Dense(1, name="out")])
    bn_first.compile("sgd", "mse")

    def log_of_zero(y_true, y_pred):
        return -ops.log(y_pred * 0.0)

    def python_if(y_true, y_pred):
        if y_true > 0:
            return ops.mean(y_pred)
        return ops.mean(-y_pred)

    def mlp(loss):
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])
        m.compile("sgd", loss)
        return m

    root = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu",
                                                                    name="relu"),
                             Root(name="root"), keras.layers.Dense(1, name="out")])
    root.compile("sgd", "mse")
    return {"seq": seq, "branch": branch, "conv": conv, "square": sq, "bn_first": bn_first,
            "inf_loss": mlp(log_of_zero), "if_loss": mlp(python_if), "root": root}


def _run(model, b):
    from nandoc.instrument.layers import run_layer_pass

    return run_layer_pass(model, None, b)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# -- records against a brute-force reference ------------------------------------------------


@pytest.mark.parametrize("name,x,checked", [
    ("seq", X3, ["hidden", "out"]),
    ("branch", X3, ["left", "right", "cat", "out"]),
    ("conv", RNG.normal(size=(16, 8, 3)), ["conv", "bn", "out"]),
])
def test_records_match_reference(nets, name, x, checked):
    import tensorflow as tf

    model = nets[name]
    b = batch(x, Y3)
    p = _run(model, b)
    assert p.mode == "layers" and p.first_nonfinite is None and p.loss_error is None
    for layer_name in checked:
        rec = p.layer(layer_name)
        ref = keras.Model(model.inputs, model.get_layer(layer_name).output)(b.x, training=True)
        ref = np.asarray(ref, dtype=np.float64)
        assert rec.finite_fraction == 1.0 and rec.inputs_finite
        assert _rel(rec.max_abs, np.abs(ref).max()) < 1e-5
        assert rec.grad_finite in (True, None)
    with tf.GradientTape() as tape:
        y_pred = model(b.x, training=True)
        total = model.compute_loss(x=b.x, y=b.y, y_pred=y_pred, training=True)
    grads = tape.gradient(total, model.trainable_weights)
    ours = {w.path: w for w in p.weights}
    assert set(ours) == {v.path for v in model.trainable_weights}
    for v, g in zip(model.trainable_weights, grads, strict=True):
        assert ours[v.path].finite and ours[v.path].grad_finite
        assert _rel(ours[v.path].grad_norm, float(np.linalg.norm(np.asarray(g)))) < 1e-5
    assert _rel(p.loss, float(total)) < 1e-5


def test_nested_layers_are_named_by_path(nets):
    p = _run(nets["branch"], batch(X3, Y3))
    assert [r.name for r in p.layers] == ["left", "right", "cat", "block/inner", "out"]
    inner = p.layer("block/inner")
    assert inner.class_name == "Dense" and inner.grad_norm > 0
    assert [w.name for w in inner.weights] == ["block/inner/kernel", "block/inner/bias"]
    assert p.layer("cat").weights == () and p.layer("cat").input_grad_finite


def test_pass_leaves_the_model_as_it_was(nets):
    bn = nets["conv"].get_layer("bn")
    before = np.array(bn.moving_mean)
    p1 = _run(nets["conv"], batch(RNG.normal(size=(16, 8, 3)) * 5 + 3))
    assert np.array_equal(np.array(bn.moving_mean), before)
    assert p1.seconds < 2.0


def test_subclassed_model_runs_as_one_layer():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    m = Tiny()
    m(X3[:1])
    m.compile("sgd", "mse")
    p = _run(m, batch(X3, Y3))
    assert p.mode == "whole-model" and len(p.layers) == 1
    assert len(p.layers[0].weights) == 2 and p.loss is not None


# -- where the first non-finite value appears --------------------------------------------------


def test_nonfinite_input_is_data(nets):
    x = X3.copy()
    x[5, 1] = np.nan
    where = _run(nets["seq"], batch(x, Y3)).first_nonfinite
    assert where.where == "data" and where.layer is None and "6" in where.detail


@pytest.mark.parametrize("name,x,layer", [
    ("square", X3 * 1e20, "square"),
    ("bn_first", np.abs(X3) * 1e38 + 1e38, "bn"),
])
def test_overflow_is_forward_at_the_right_layer(nets, name, x, layer):
    p = _run(nets[name], batch(x, Y3))
    assert p.input_finite
    assert p.first_nonfinite.where == "forward" and p.first_nonfinite.layer == layer


def test_inf_loss_is_loss(nets):
    p = _run(nets["inf_loss"], batch(X3, Y3))
    assert p.loss == float("inf") and p.first_nonfinite.where == "loss"


def test_sqrt_at_zero_is_backward_at_that_layer(nets):
    p = _run(nets["root"], batch(X3, Y3))
    assert all(r.finite for r in p.layers) and np.isfinite(p.loss)
    assert p.layer("relu").nonfinite_rows == () and p.layer("relu").min == 0.0
    where = p.first_nonfinite
    assert (where.where, where.layer) == ("backward", "root")


def test_loss_that_raises_keeps_the_forward_records(nets):
    p = _run(nets["if_loss"], batch(X3, Y3))
    assert p.loss is None and p.loss_error.startswith("ValueError")
    assert [r.name for r in p.layers] == ["out"] and p.layers[0].grad_norm is None


# -- batch selection ---------------------------------------------------------------------------


def test_batches_include_extreme_and_rare_rows():
    x = RNG.normal(size=(100, 2)).astype("float32")
    x[[7, 63], 1] = [5e3, -9e3]
    y = np.zeros((100, 1), "float32")
    y[[11, 40, 88]] = 1
    split = Split("train", x, y, np.arange(101, 201), Path("d.csv"), 100)
    batches = {b.name: b for b in select_batches(split, 10, seed=3)}
    assert set(batches) == {"first", "random", "extreme-values", "rare-label"}
    assert {108, 164} <= set(batches["extreme-values"].rows.tolist())
    assert batches["rare-label"].rows.tolist() == [112, 141, 189]
    again = {b.name: b for b in select_batches(split, 10, seed=3)}
    assert np.array_equal(again["random"].indices, batches["random"].indices)


def test_identical_batches_are_kept_once():
    split = Split("train", X3[:4], np.arange(4, dtype="float32")[:, None] * 0.3,
                  np.arange(1, 5), Path("d.csv"), 4)
    names = [b.name for b in select_batches(split, 32)]
    assert names == ["first", "rare-label"]


# -- the step checks: fire on the pathology, stay silent on a healthy model -------------------


def _findings(func, **kwargs) -> list[Finding]:
    return list(func(**kwargs))


@pytest.fixture(scope="module")
def fp16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        def build(scale):
            m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="big"),
                                  keras.layers.Dense(1, dtype="float32", name="out")])
            m.compile("adam", "mse")
            m.get_layer("big").kernel.assign(np.full((3, 4), scale, "float32"))
            # a small head keeps the float16 gradients small: only the forward values are at stake
            m.get_layer("out").kernel.assign(np.full((4, 1), 1e-6, "float32"))
            return m
        return {"inf": build(1e5), "close": build(3e3), "healthy": build(0.5)}
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("case,severity", [("inf", Severity.ERROR), ("close", Severity.WARNING),
                                           ("healthy", None)],
                         ids=["float16-overflow-fires", "float16-close-warns",
                              "float16-overflow-silent"])
def test_float16_overflow(fp16, case, severity):
    from nandoc.checks.step.float16_overflow import float16_overflow

    data = dataset(np.abs(X3) + 1, Y3)
    found = _findings(float16_overflow, model=fp16[case],
                      passes=layer_passes(fp16[case], None, data, None))
    if severity is None:
        assert found == []
        return
    (f,) = found
    assert f.cause == "float16-overflow" and f.severity is severity and f.basis == "measured"
    assert f.location.kind == "layer" and f.location.layer == "big"
    assert "LossScaleOptimizer" in f.evidence and "batch '" in f.evidence


@pytest.mark.parametrize("scale,fires", [(1e20, True), (1.0, False)],
                         ids=["data-unscaled-measured-fires", "data-unscaled-measured-silent"])
def test_measured_unscaled(nets, scale, fires):
    from nandoc.checks.step.data_unscaled import data_unscaled

    x = RNG.normal(size=(24, 8, 3)).astype("float32")
    x[:, :, 2] *= scale
    data = dataset(x, RNG.normal(size=(24, 1)), features=("a", "b", "big"))
    found = _findings(data_unscaled, data=data, passes=layer_passes(nets["conv"], None, data, None))
    if not fires:
        assert found == []
        return
    (f,) = found
    assert (f.cause, f.severity, f.basis, f.confidence) == ("data-unscaled", Severity.ERROR,
                                                           "measured", 0.9)
    assert (f.location.kind, f.location.column, f.location.file) == ("data", "big", "data.csv")
    assert "layer 'conv'" in f.evidence and "column 'big'" in f.evidence


@pytest.fixture(scope="module")
def heads():
    keras.utils.set_random_seed(1)

    def build(activation):
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation=activation,
                                                                     name="out")])
        m.compile("sgd", "binary_crossentropy")
        m.get_layer("out").kernel.assign(np.full((3, 1), 3.0, "float32"))
        return m

    return {"linear": build(None), "sigmoid": build("sigmoid")}


@pytest.mark.parametrize("head,fires", [("linear", True), ("sigmoid", False)],
                         ids=["activation-loss-mismatch-fires", "activation-loss-mismatch-silent"])
def test_measured_activation_loss_mismatch(heads, head, fires):
    from nandoc.checks.step.activation_loss_mismatch import activation_loss_mismatch
    from nandoc.loading.model import describe_losses

    model = heads[head]
    found = _findings(activation_loss_mismatch, model=model, loss=describe_losses(model),
                      passes=layer_passes(model, None, dataset(X3, Y3), None))
    if not fires:
        assert found == []
        return
    (f,) = found
    assert (f.cause, f.severity, f.confidence) == ("activation-loss-mismatch", Severity.ERROR,
                                                   0.95)
    assert (f.location.kind, f.location.name, f.location.layer) == (
        "loss", "binary_crossentropy", "out")
    assert "outside [0, 1]" in f.title and "from_logits=True" in f.fix


def test_measured_unscaled_supersedes_static_end_to_end(tmp_path, nets):
    from nandoc.config import Config
    from nandoc.drivers.check import check

    model_path = tmp_path / "model.keras"
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, name="first"),
                          keras.layers.Dense(1, name="out")])
    m.compile("sgd", "mse")
    m.save(model_path)
    rows = [[round(float(v), 3), round(float(w) * 1e15, 1), round(float(v), 3)]
            for v, w in RNG.normal(size=(40, 2))]
    data = write_csv(tmp_path / "data.csv", ["a", "huge", "label"], rows)
    report = check(Config(model_path=model_path, data_path=data, target=("label",)))
    unscaled = [f for f in report.findings if f.cause == "data-unscaled"]
    # the static check's suspect is about the same place (cause, data file, column): superseded
    assert [(f.check, f.basis) for f in unscaled] == [("step-data-unscaled", "measured")]
    assert unscaled[0].location.column == "huge" and unscaled[0].location.file == "data.csv"
    assert unscaled[0].measured["columns"][0]["column"] == "huge"


def test_measured_mismatch_supersedes_the_static_read_end_to_end(tmp_path, heads):
    from nandoc.config import Config
    from nandoc.drivers.check import check

    model_path = tmp_path / "linear.keras"
    heads["linear"].save(model_path)
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"],
                     [[*map(float, r), float(y)] for r, y in zip(X3, Y3[:, 0], strict=True)])
    report = check(Config(model_path=model_path, data_path=data, target=("label",)))
    found = [f for f in report.findings if f.cause == "activation-loss-mismatch"]
    assert [(f.check, f.basis) for f in found] == [("step-activation-loss-mismatch", "measured")]
    ran = {c.check: c.outcome.value for c in report.checks}
    assert ran["activation-loss-mismatch"] == "ran" and ran["step-float16-overflow"] == "ran"


def test_passes_are_measured_once_per_run_and_a_failure_is_kept(nets):
    from nandoc.config import Config
    from nandoc.engine.inputs import Inputs

    inputs = Inputs(config=Config(), model=nets["seq"], data=dataset(X3, Y3))
    first = inputs.get("passes")
    assert inputs.get("passes") is first
    assert [p.batch.name for p in first] == ["first", "rare-label"]  # 16 samples: one batch
    broken = Inputs(config=Config(), model=nets["seq"], data=dataset(X3[:, :2], Y3))
    with pytest.raises(Exception) as once:
        broken.get("passes")
    with pytest.raises(Exception) as again:
        broken.get("passes")
    assert again.value is once.value  # every check that needs it reports the same failure
    assert not Inputs(config=Config(), model=nets["seq"]).has("passes")


def test_the_loss_probe_reuses_the_passes_predictions_in_training_mode():
    """The probe's real predictions are those the layer passes already made (training mode,
    as the loss sees them in training), paired with their own batches' targets: no second
    forward pass. Without passes it predicts the first rows itself."""
    from nandoc.analysis.loss_probe import reachable_points
    from nandoc.instrument.outputs import output_info

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                          keras.layers.Dropout(0.5),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    data = dataset(X3, Y3)
    passes = layer_passes(m, None, data, None)
    assert passes
    own = "the model's own prediction on a training sample"
    points = reachable_points(m, output_info(m), data, passes)
    mine = [i for i, n in enumerate(points.notes) if n == own]
    expected = np.concatenate([p.y_pred for p in passes])[:32]
    targets = np.concatenate([p.batch.y for p in passes])[:32]
    assert len(mine) == len(expected)
    np.testing.assert_allclose(points.y_pred[mine], expected.reshape(len(expected), -1))
    np.testing.assert_allclose(points.y_true[mine], targets.reshape(len(targets), -1))
    alone = reachable_points(m, output_info(m), data)
    inference = np.asarray(m(X3, training=False))
    np.testing.assert_allclose(alone.y_pred[[i for i, n in enumerate(alone.notes) if n == own]],
                               inference, rtol=1e-6)
