"""The instrumented passes through every common Keras model family: recurrent (LSTM, GRU,
SimpleRNN, Bidirectional, Embedding on token ids), attention, convolutions in 1, 2 and 3 dims,
TimeDistributed, a registered subclassed model and a Sequential nested in a functional one.

Every model is tiny, compiled, trained for an epoch, saved and loaded back, as nandoc gets them.
The layer pass must measure every layer and weight of a healthy batch as finite and match a
brute-force tape; the watched step must train it; and planted faults must be found where they
were planted."""

from __future__ import annotations

import numpy as np
import pytest

from nandoc.instrument.batches import Batch
from tests.family_models import FAMILIES, RECORDS, RECURRENT, N, builders, data

keras = pytest.importorskip("keras")
ops = keras.ops


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (path of the saved .keras model, x, y of a batch)."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for name, (shape, build) in builders().items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer="adam", loss="mse")
        x, y = data(name, shape, 32)
        model.fit(x, y, epochs=1, batch_size=N, verbose=0)
        path = root / f"{name}.keras"
        model.save(path)
        out[name] = (path, *data(name, shape, N, seed=1))
    return out


@pytest.fixture(scope="module")
def loaded(saved):
    """Each model loaded once, shared by the tests that leave it as it was."""
    return {name: keras.models.load_model(path) for name, (path, _, _) in saved.items()}


def _fresh(saved, name):
    return keras.models.load_model(saved[name][0])


def _batch(x, y) -> Batch:
    return Batch("first", np.arange(len(x)), x, y, np.arange(1, len(x) + 1), "test batch")


def _pass(model, x, y):
    from nandoc.instrument.layers import run_layer_pass

    return run_layer_pass(model, None, _batch(x, y))


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# -- the layer pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_layer_pass_measures_every_layer(loaded, saved, name):
    import tensorflow as tf

    model = loaded[name]
    _, x, y = saved[name]
    p = _pass(model, x, y)
    assert p.mode == ("whole-model" if name == "subclassed" else "layers")
    assert [r.name for r in p.layers] == RECORDS[name]
    assert p.loss_error is None and p.backward_error is None
    assert p.loss is not None and np.isfinite(p.loss)
    assert p.first_nonfinite is None
    for rec in p.layers:
        assert rec.finite and rec.inputs_finite and not rec.nonfinite_rows, rec
        assert np.isfinite(rec.max_abs), rec
        assert rec.grad_finite is True and rec.grad_norm is not None, rec
        assert rec.input_grad_finite in (True, None), rec
    with_weights = {r.name for r in p.layers if r.weights}
    assert with_weights, name
    # Every trainable weight is measured once, with the gradient a plain tape gives.
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        total = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
    grads = tape.gradient(total, model.trainable_weights)
    ours = {w.path: w for w in p.weights}
    assert len(ours) == len(p.weights) and set(ours) == {v.path for v in
                                                          model.trainable_weights}
    assert len({w.name for w in p.weights}) == len(p.weights)  # names a report can tell apart
    for v, g in zip(model.trainable_weights, grads, strict=True):
        w = ours[v.path]
        assert w.finite and w.grad_finite and w.grad_norm is not None, w
        ref = float(np.linalg.norm(np.asarray(tf.convert_to_tensor(g))))
        assert _rel(w.grad_norm, ref) < 1e-4, (w, ref)
    assert _rel(p.loss, float(total)) < 1e-5
    assert p.y_pred is not None and p.y_pred.shape == (N, 1)


def test_embedding_gradient_is_sparse_and_measured(loaded, saved):
    """An Embedding's gradient is IndexedSlices: measured densified, the rows not looked up
    contributing zeros."""
    import tensorflow as tf

    model = loaded["embed_lstm"]
    _, x, y = saved["embed_lstm"]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True), training=True)
    emb = model.get_layer("embed").embeddings
    assert isinstance(tape.gradient(loss, emb), tf.IndexedSlices)
    [w] = _pass(model, x, y).layer("embed").weights
    assert w.grad_finite and w.grad_norm > 0


def test_pass_leaves_the_model_as_it_was(loaded, saved):
    model = loaded["lstm"]
    before = [np.asarray(v.value).copy() for v in model.variables]
    _pass(model, *saved["lstm"][1:])
    for v, b in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(np.asarray(v.value), b)


# -- planted faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [f for f in FAMILIES if f != "embed_lstm"])
def test_nan_input_is_seen_at_the_first_layer(loaded, saved, name):
    _, x, y = saved[name]
    x = x.copy()
    x[2].flat[0] = np.nan  # one value of the third sample (file row 3)
    p = _pass(loaded[name], x, y)
    assert not p.input_finite and p.first_nonfinite.where == "data"
    assert "3" in p.first_nonfinite.detail
    first = p.layers[0]
    assert first.name == RECORDS[name][0]
    assert not first.finite and not first.inputs_finite
    assert 3 in first.nonfinite_rows
    assert p.loss is not None and not np.isfinite(p.loss)


def _recurrent_kernel(layer):
    inner = getattr(layer, "forward_layer", layer)
    return inner.cell.recurrent_kernel


@pytest.mark.parametrize("name", RECURRENT)
def test_inf_recurrent_weight_is_located_in_the_rnn(saved, name):
    model = _fresh(saved, name)
    kernel = _recurrent_kernel(model.get_layer("rnn"))
    kernel.assign(np.full(kernel.shape, np.inf, dtype="float32"))  # 0 * inf at h0 = 0
    _, x, y = saved[name]
    p = _pass(model, x, y)
    seen = p.first_nonfinite
    assert seen.where == "forward" and seen.layer == "rnn", seen
    rec = p.layer("rnn")
    assert rec.inputs_finite and not rec.finite
    assert any(not w.finite and "recurrent_kernel" in w.name for w in rec.weights)
    assert all(r.finite for r in p.layers[:p.layers.index(rec)])


def test_inf_attention_weight_is_located_in_the_attention(saved):
    model = _fresh(saved, "transformer")
    mha = model.get_layer("mha")
    value = mha.value_dense.kernel
    value.assign(np.full(value.shape, np.inf, dtype="float32"))  # +inf and -inf inputs: NaN
    _, x, y = saved["transformer"]
    seen = _pass(model, x, y).first_nonfinite
    assert seen.where == "forward" and seen.layer == "mha", seen
    assert "weight mha/value/kernel is non-finite" in seen.detail  # not one of four 'kernel's


def test_nan_weight_in_a_nested_model_is_located_by_path(saved):
    model = _fresh(saved, "nested")
    kernel = model.get_layer("inner").get_layer("inner_proj").kernel
    k = np.asarray(kernel.value).copy()
    k[0, 0] = np.nan
    kernel.assign(k)
    _, x, y = saved["nested"]
    seen = _pass(model, x, y).first_nonfinite
    assert seen.where == "forward" and seen.layer == "inner/inner_proj", seen


def test_conv_overflow_is_located_at_the_conv(saved):
    model = _fresh(saved, "conv2d")
    kernel = model.get_layer("conv").kernel
    kernel.assign(np.asarray(kernel.value) * 1e38)  # sums of ~1e38 overflow float32
    _, x, y = saved["conv2d"]
    seen = _pass(model, x * 100, y).first_nonfinite
    assert seen.where == "forward" and seen.layer == "conv", seen


# -- the watched step --------------------------------------------------------------------------


def _assert_trained(step, stats, before):
    assert stats.applied and stats.state_finite
    assert np.isfinite(stats.loss) and np.isfinite(stats.grad_norm) and stats.grad_norm > 0
    assert len(stats.layer_grad_norms) == len(step.layers)
    assert np.isfinite(stats.layer_grad_norms).all() and stats.layer_grad_finite.all()
    assert stats.layer_weight_finite.all()
    after = [np.asarray(v.value) for v in step.trainable]
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))


@pytest.mark.parametrize("name", FAMILIES)
def test_watched_step_trains(saved, name):
    from nandoc.watch.step import WatchedStep

    model = _fresh(saved, name)
    _, x, y = saved[name]
    step = WatchedStep(model)
    # per-layer norms are per layer as the layer pass names them: a wrapper's or an
    # attention's inner weights count as the layer's own, nested layers as 'outer/inner'
    weighted = [r for r in RECORDS[name] if r not in ("flat", "maxpool", "pool")
                and not r.startswith("add")]
    assert step.layers == (["hidden", "out"] if name == "subclassed" else weighted)
    before = [np.asarray(v.value).copy() for v in step.trainable]
    stats = step.train(x, y)
    _assert_trained(step, stats, before)
    assert (stats.layer_grad_norms > 0).all()
    assert np.isfinite(step.validate(x, y))
    stats = step.train(x, y)  # the compiled step runs again without retracing trouble
    assert stats.applied


@pytest.mark.parametrize("name", ["lstm", "transformer", "conv2d", "subclassed"])
def test_watched_step_keeps_the_last_finite_state(saved, name):
    from nandoc.watch.step import WatchedStep

    model = _fresh(saved, name)
    _, x, y = saved[name]
    x = x.copy()
    x[0].flat[0] = np.nan
    step = WatchedStep(model)
    before = [np.asarray(v.value).copy() for v in model.variables]
    stats = step.train(x, y)
    # a ReLU or a max-pool may drop the NaN from the loss, never from the gradient
    assert not stats.applied and not np.isfinite(stats.grad_norm)
    assert not stats.layer_grad_finite.all()
    for v, b in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(np.asarray(v.value), b)


# -- two inputs, two outputs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_io(tmp_path_factory):
    keras.utils.set_random_seed(0)
    a = keras.Input((3,), name="a")
    b = keras.Input((4, 2), name="b")
    hb = keras.layers.LSTM(3, name="rnn")(b)
    h = keras.layers.Concatenate(name="cat")([keras.layers.Dense(3, name="da")(a), hb])
    reg = keras.layers.Dense(1, name="reg")(h)
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    model = keras.Model({"a": a, "b": b}, {"reg": reg, "cls": cls}, name="two_io")
    model.compile(optimizer="adam", loss={"reg": "mse",
                                          "cls": "sparse_categorical_crossentropy"})
    rng = np.random.default_rng(0)

    def data(n):
        x = {"a": rng.normal(size=(n, 3)).astype("float32"),
             "b": rng.normal(size=(n, 4, 2)).astype("float32")}
        y = {"reg": rng.normal(size=(n, 1)).astype("float32"),
             "cls": rng.integers(0, 3, size=(n, 1)).astype("float32")}
        return x, y

    model.fit(*data(32), epochs=1, batch_size=N, verbose=0)
    path = tmp_path_factory.mktemp("two_io") / "two_io.keras"
    model.save(path)
    return path, data(N)


def test_watched_step_trains_dict_inputs_and_outputs(two_io):
    from nandoc.watch.step import WatchedStep

    path, (x, y) = two_io
    model = keras.models.load_model(path)
    step = WatchedStep(model)
    before = [np.asarray(v.value).copy() for v in step.trainable]
    stats = step.train(x, y)
    _assert_trained(step, stats, before)
    assert sorted(step.layers) == ["cls", "da", "reg", "rnn"]
    assert np.isfinite(step.validate(x, y))
    # the reference: the compiled loss of the same dicts
    expected = float(model.compute_loss(x=x, y=y, y_pred=model(x), training=False))
    assert _rel(step.validate(x, y), expected) < 1e-5


def test_watched_step_with_a_nan_in_one_of_two_inputs(two_io):
    from nandoc.watch.step import WatchedStep

    path, (x, y) = two_io
    model = keras.models.load_model(path)
    x = {**x, "b": x["b"].copy()}
    x["b"][1, 0, 0] = np.nan
    stats = WatchedStep(model).train(x, y)
    assert not stats.applied and not np.isfinite(stats.grad_norm)


# -- the op-level probe of one layer -----------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_layer_probe_reaches_every_layer(loaded, saved, name):
    """Every layer the pass records is reached by the op-level probe with the inputs it got in
    the model (nested models entered, several inputs, keyword arguments), and finds nothing in
    a healthy batch."""
    from nandoc.analysis.layer_probe import _reach, layer_op_findings

    model = loaded[name]
    _, x, y = saved[name]
    p = _pass(model, x, y)
    for rec in p.layers:
        reached = _reach(model, rec.name, x)
        assert reached is not None, rec.name
        _, call, inputs = reached
        assert all(a.shape[0] == N for a in inputs)
        out = np.asarray(call(*inputs), dtype=np.float64)
        assert _rel(float(np.abs(out).max()), rec.max_abs) < 1e-4, rec.name
        assert layer_op_findings(model, rec.name, x, np.arange(1, N + 1), []) == []


def _ops_found(model, x):
    from nandoc.analysis.layer_probe import layer_op_findings

    seen = _pass(model, x, np.zeros((len(x), 1), "float32")).first_nonfinite
    assert seen is not None and seen.where == "forward", seen
    found = layer_op_findings(model, seen.layer, x, np.arange(1, len(x) + 1), [])
    return seen.layer, {(f.cause, f.location.op, f.location.layer) for f in found}


def test_layer_probe_in_a_nested_model():
    L = keras.layers
    big = keras.initializers.Constant(50.0)
    inner = keras.Sequential([keras.Input((3,)), L.Dense(2, name="inner_dense"),
                              L.Dense(4, activation="exponential", kernel_initializer=big,
                                      name="inner_exp")], name="inner")
    i = keras.Input((3,))
    model = keras.Model(i, L.Dense(1, name="out")(inner(L.Dense(3, name="pre")(i))))
    x = np.random.default_rng(0).normal(size=(N, 3)).astype("float32") * 10
    layer, found = _ops_found(model, x)
    assert layer == "inner/inner_exp"
    assert ("exp-overflow", "Exp", "inner/inner_exp") in found


class Ratio(keras.layers.Layer):
    def call(self, inputs):
        a, b = inputs
        return a / b


def test_layer_probe_of_a_layer_with_two_inputs():
    L = keras.layers
    i = keras.Input((3,))
    a = L.Dense(3, name="num")(i)
    b = L.Dense(3, kernel_initializer="zeros", name="den")(i)  # every denominator is 0
    model = keras.Model(i, L.Dense(1, name="out")(Ratio(name="ratio")([a, b])))
    x = np.random.default_rng(0).normal(size=(N, 3)).astype("float32")
    assert _ops_found(model, x) == ("ratio", {("division-by-zero", "RealDiv", "ratio")})


class LogNet(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(3, activation="relu", name="hidden")

    def call(self, x):
        return ops.sum(ops.log(self.hidden(x)), axis=-1, keepdims=True)


def test_layer_probe_of_a_subclassed_model_runs_its_call():
    model = LogNet(name="lognet")
    model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(N, 3)).astype("float32")
    model(x)
    model.hidden.kernel.assign(-np.abs(np.asarray(model.hidden.kernel.value)))
    layer, found = _ops_found(model, np.abs(x))  # ReLU zeros: log(0)
    assert layer == "lognet" and ("unclipped-log", "Log", "lognet") in found


@pytest.mark.parametrize("name", RECURRENT)
def test_layer_probe_of_a_broken_recurrent_layer_runs(saved, name):
    from nandoc.analysis.layer_probe import layer_op_findings

    model = _fresh(saved, name)
    kernel = _recurrent_kernel(model.get_layer("rnn"))
    kernel.assign(np.full(kernel.shape, np.inf, dtype="float32"))
    _, x, _ = saved[name]
    assert layer_op_findings(model, "rnn", x, np.arange(1, N + 1), []) == []
