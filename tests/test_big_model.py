"""Big models, tested small: a ~200 k-parameter transformer with the structure of
bench/big_model.py's 35 M one (token Embedding + position embedding, MultiHeadAttention + FFN +
LayerNormalization blocks, a classification head), and the memory-relevant behaviour that
matters at 50 M parameters: the layer pass keeps no per-layer weight copies and makes no
whole-array float64 copies; the watched step's snapshot is planned against the free memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, write_csv

VOCAB, D, HEADS, FFN, BLOCKS, T, CLASSES, N = 1500, 64, 4, 256, 2, 16, 4, 256
ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _transformer():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((T,), dtype="int32", name="tokens")
    x = layers.Embedding(VOCAB, D, name="tok_emb")(inp)
    x = x + layers.Embedding(T, D, name="pos_emb")(keras.ops.arange(T))
    for i in range(BLOCKS):
        a = layers.MultiHeadAttention(HEADS, D // HEADS, name=f"mha{i}")(x, x)
        x = layers.LayerNormalization(name=f"ln{i}a")(x + a)
        f = layers.Dense(FFN, activation="gelu", name=f"ffn{i}a")(x)
        x = layers.LayerNormalization(name=f"ln{i}b")(x + layers.Dense(D, name=f"ffn{i}b")(f))
    y = layers.Dense(CLASSES, name="head")(layers.GlobalAveragePooling1D(name="pool")(x))
    m = keras.Model(inp, y, name="small_transformer")
    m.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    """(model, model path, data csv, tokens, labels)."""
    d = tmp_path_factory.mktemp("big")
    m = _transformer()
    assert 150_000 < m.count_params() < 300_000
    path = d / "model.keras"
    m.save(path)
    rng = np.random.default_rng(0)
    tok = rng.integers(1, VOCAB, size=(N, T))
    lab = rng.choice(CLASSES, size=N, p=[0.4, 0.3, 0.2, 0.1])
    csv = write_csv(d / "data.csv", [f"t{j}" for j in range(T)] + ["label"],
                    [[*r, int(label)] for r, label in zip(tok, lab, strict=True)])
    return m, path, csv, tok.astype("int32"), lab


def _arrays_in(obj, seen=None):
    """Every numpy array reachable from a record's fields (dataclasses, tuples, lists)."""
    import dataclasses

    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [a for f in dataclasses.fields(obj) for a in _arrays_in(getattr(obj, f.name), seen)]
    if isinstance(obj, (tuple, list)):
        return [a for v in obj for a in _arrays_in(v, seen)]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays_in(v, seen)]
    return []


def test_layer_pass_keeps_no_weight_or_activation_copies(transformer):
    from nandoc.instrument.batches import Batch
    from nandoc.instrument.layers import run_layer_pass

    m, _, _, tok, lab = transformer
    idx = np.arange(32)
    batch = Batch("first", idx, tok[idx], lab[idx], idx + 1, "the first 32")
    lp = run_layer_pass(m, None, batch)
    assert lp.first_nonfinite is None and lp.loss is not None and np.isfinite(lp.loss)
    names = [r.name for r in lp.layers]
    assert "mha0" in names and "ffn1a" in names and "head" in names
    # every trainable weight measured once, its gradient reached
    assert len(lp.weights) == len(m.trainable_variables)
    assert all(w.grad_norm is not None and w.grad_norm > 0 for w in lp.weights)
    # records are plain data: no numpy array anywhere in any layer record
    assert _arrays_in(lp.layers) == []
    emb = next(w for w in lp.weights if w.name == "tok_emb/embeddings")
    assert emb.finite and 0 < emb.max_abs < 1


def test_layer_measurements_make_no_float64_copy():
    from nandoc.instrument.measure import grad_summary, health, stats

    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 16, 4096)).astype(np.float32)  # 16 MiB; float64 would be 32 MiB
    a[3, 2, 1] = np.nan
    rows = np.arange(1, 65)
    clean = np.nan_to_num(a)
    tracemalloc.start()
    try:
        s = stats([a], rows)
        _, peak_stats = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stats([clean], rows)
        _, peak_clean = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        finite, top = health(a)
        norm, grad_finite = grad_summary([clean])
        _, peak_other = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s["nonfinite_rows"] == (4,) and 0 < s["finite_fraction"] < 1
    assert s["max_abs"] == pytest.approx(float(np.nanmax(np.abs(a))))
    assert not finite and top == s["max_abs"] and grad_finite
    assert norm == pytest.approx(float(np.sqrt(np.nansum(a.astype(np.float64) ** 2))), rel=1e-6)
    # a float64 copy of the array would be 2x its size: the temporaries stay well below it
    # (with a NaN, one float32 copy of the finite values is made for the histogram)
    assert peak_clean < 0.75 * a.nbytes, peak_clean  # two bool masks: 0.5x
    assert peak_stats < 1.5 * a.nbytes, peak_stats
    assert peak_other < 0.25 * a.nbytes, peak_other


def _bn_model():
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                          keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def test_snapshot_plan_against_budgets():
    from nandoc.watch.state import plan_snapshot, state_bytes, state_variables

    m = _bn_model()
    m.optimizer.build(m.trainable_variables)
    variables = state_variables(m)
    need = state_bytes(variables)
    assert need == sum(int(np.asarray(v.numpy()).nbytes) for v in variables)
    assert plan_snapshot(variables, device="CPU", device_free=10 * need).where == "device"
    cpu = plan_snapshot(variables, device="CPU", device_free=need)  # no room next to training
    assert cpu.where == "skipped" and cpu.bytes == need and "not undone" in cpu.why
    gpu = plan_snapshot(variables, device="GPU:0", device_free=need, host_free=10 * need)
    assert gpu.where == "host"
    assert plan_snapshot(variables, device="GPU:0", device_free=need,
                         host_free=need).where == "skipped"
    assert plan_snapshot(variables, device="CPU", measure=False).where == "device"
    assert set(gpu.as_extra()) == {"where", "bytes", "why"}
    # measured for real: this machine has room for a few kB
    assert plan_snapshot(variables).where == "device"


@pytest.mark.parametrize("where", ["host", "skipped"])
def test_watched_step_without_device_snapshot(where):
    """A NaN batch turns BatchNormalization's moving statistics NaN in the forward pass: the
    host snapshot puts them back; with none, the step still refuses the update but the
    statistics stay NaN (what the report's `snapshot.why` says)."""
    from nandoc.watch.state import SnapshotPlan, state_variables
    from nandoc.watch.step import WatchedStep

    m = _bn_model()
    step = WatchedStep(m, snapshot=SnapshotPlan(where, 0, 0, "test budget"))
    assert step._snapshot == []  # no second copy of the state on the device
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = x[:, :1]
    assert step.train(x, y).ok
    assert len(state_variables(m)) == len(step.state)
    before = [np.array(v.numpy()) for v in m.trainable_variables]
    bad = x.copy()
    bad[0, 0] = np.nan
    stats = step.train(bad, y)
    assert not stats.ok
    after = [np.array(v.numpy()) for v in m.trainable_variables]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))  # not applied
    bn = m.get_layer("bn").moving_mean.numpy()
    assert np.isfinite(bn).all() == (where == "host")


def test_check_on_a_small_transformer_runs_clean(transformer):
    _, path, csv, _, _ = transformer
    proc = subprocess.run(
        [sys.executable, "-m", "nandoc", "check", str(path), str(csv), "--target", "label",
         "--format", "json", "--steps", "5"],
        cwd=Path(path).parent, env=ENV, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    report = json.loads(proc.stdout)
    assert report["status"] == "clean"
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert report["burst"]["steps_ran"] >= 1
    assert "Traceback" not in proc.stderr
    assert REPO.exists()


def _eager_tensors() -> int:
    import gc

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "EagerTensor")


def test_layer_passes_keep_no_tensor_alive(transformer):
    """Each pass leaves nothing behind: with the inputs' gradients taken as extra gradient
    sources, TensorFlow 2.21 kept one activation per copied input alive after every pass
    (one batch of activations per pass on a 50 M transformer); the taps do not."""
    from nandoc.instrument.batches import Batch
    from nandoc.instrument.layers import run_layer_pass

    m, _, _, tok, lab = transformer
    idx = np.arange(16)
    batch = Batch("first", idx, tok[idx], lab[idx], idx + 1, "the first 16")
    run_layer_pass(m, None, batch)  # warm: Keras and TensorFlow build what they cache
    before = _eager_tensors()
    for _ in range(3):
        run_layer_pass(m, None, batch)
    assert _eager_tensors() - before <= 0


def test_input_gradients_from_the_taps_equal_the_tapes(transformer):
    """The gradient flowing into a layer's input, kept by its tap during the one backward
    pass, is what a tape gives for that tensor; so is the producing layer's output gradient."""
    import keras
    import tensorflow as tf

    from nandoc.instrument.batches import Batch
    from nandoc.instrument.layers import _forward_backward

    m, _, _, tok, lab = transformer
    idx = np.arange(8)
    batch = Batch("first", idx, tok[idx], lab[idx], idx + 1, "the first 8")
    _, rec, _, _, _, grads, error = _forward_backward(m, None, batch)
    assert error is None
    calls = {c.name: c for c in rec.calls}
    n_out = sum(len(c.outputs) for c in rec.calls)
    out_at = {c.name: sum(len(d.outputs) for d in rec.calls[:i])
              for i, c in enumerate(rec.calls)}
    in_at = {c.name: n_out + sum(len(d.inputs) for d in rec.calls[:i])
             for i, c in enumerate(rec.calls)}
    assert len(calls["head"].inputs) == 1
    tapped = np.asarray(grads[in_at["head"]])
    pooled_grad = np.asarray(grads[out_at["pool"]])
    sub = keras.Model(m.inputs, m.get_layer("pool").output)
    with tf.GradientTape() as tape:
        pooled = sub(tok[idx], training=True)
        tape.watch(pooled)
        logits = m.get_layer("head")(pooled)
        loss = m.compute_loss(x=tok[idx], y=lab[idx], y_pred=logits, training=True)
    expected = tape.gradient(loss, pooled).numpy()
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(tapped, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(pooled_grad, expected, rtol=1e-4, atol=1e-7)
    # a residual: ln0a's output feeds ffn0a and the second residual add; each tap holds
    # its own consumer's share, and they differ
    ffn_in = np.asarray(grads[in_at["ffn0a"]])
    assert ffn_in.shape == (8, T, D) and np.isfinite(ffn_in).all()


def test_a_sparse_gradient_is_measured_as_the_dense_one_the_optimizer_applies():
    import tensorflow as tf

    from nandoc.instrument.measure import compact_gradient, summary

    rng = np.random.default_rng(0)
    values = tf.constant(rng.normal(size=(6, 4)).astype("float32"))
    indices = tf.constant([3, 0, 3, 7, 0, 3])  # repeats: the optimizer sums them per row
    sparse = tf.IndexedSlices(values, indices, dense_shape=tf.constant([10, 4]))
    dense = tf.convert_to_tensor(sparse)
    compact = compact_gradient(sparse)
    assert tuple(compact.shape) == (3, 4)  # the rows touched, not the vocabulary
    a, b = summary(dense), summary(compact)
    assert a[0] == b[0] and a[1] == pytest.approx(b[1]) and a[2] == pytest.approx(b[2])
    assert compact_gradient(dense) is dense


def test_summary_of_tiny_and_huge_finite_values_is_exact():
    """One round trip for finite tensors; squares that over- or underflow float32 are taken
    again scaled by the max."""
    import tensorflow as tf

    from nandoc.instrument.measure import summary

    for scale in (1e-30, 1.0, 1e30):
        a = np.array([3.0, -4.0, 0.0], dtype=np.float32) * np.float32(scale)
        finite, top, squares = summary(tf.constant(a))
        assert finite and top == pytest.approx(4 * scale)
        assert squares == pytest.approx(25 * scale * scale, rel=1e-5)
    finite, top, _ = summary(tf.constant([1.0, np.nan, -7.0], dtype=tf.float32))
    assert not finite and top == 7.0


def test_the_passes_measure_the_weights_once(transformer):
    from nandoc.instrument.batches import Batch
    from nandoc.instrument.layers import run_layer_pass

    m, _, _, tok, lab = transformer
    shared: dict = {}
    passes = []
    for start in (0, 8):
        idx = np.arange(start, start + 8)
        passes.append(run_layer_pass(m, None, Batch("b", idx, tok[idx], lab[idx], idx + 1, ""),
                                     weight_health=shared))
    assert len(shared) == len(m.trainable_variables)
    assert [w.max_abs for w in passes[0].weights] == [w.max_abs for w in passes[1].weights]
    # the gradients are the batch's own
    assert [w.grad_norm for w in passes[0].weights] != [w.grad_norm for w in passes[1].weights]


def test_a_big_state_is_kept_in_a_temporary_file_and_restored(transformer):
    from nandoc.watch.state import KeptState, restore, snapshot

    m = _bn_model()
    m.optimizer.build(m.trainable_variables)
    before = snapshot(m)
    kept = KeptState(m, spill_bytes=0)
    small = KeptState(m)
    assert kept.where == "file" and small.where == "memory" and len(kept) == len(before)
    path = Path(kept.path)
    assert path.exists() and path.stat().st_size > sum(a.nbytes for a in before)
    for v in m.variables:
        v.assign(np.full(v.shape, 7, dtype=v.dtype.name if hasattr(v.dtype, "name")
                         else v.dtype))
    restore(m, kept)
    assert all(np.array_equal(a, b) for a, b in zip(before, snapshot(m), strict=True))
    restore(m, kept)  # read again: a KeptState restores as often as asked
    del kept
    import gc

    gc.collect()
    assert not path.exists()  # deleted with the object


def test_a_big_model_on_a_cpu_snapshots_its_statistics_only():
    from nandoc.watch.state import CPU_FULL_SNAPSHOT_BYTES, plan_snapshot, state_variables

    m = _bn_model()
    m.optimizer.build(m.trainable_variables)
    variables = state_variables(m)
    stats = list(m.non_trainable_variables)
    # a small state is copied whole; a big one (here: a budget that says so) partly
    assert plan_snapshot(variables, device="CPU", device_free=10**12,
                         statistics=stats).where == "device"
    import tensorflow as tf

    import nandoc.watch.state as state

    # the plan reads shapes and dtypes only: a 256 MiB weight's spec, next to the real state
    big = [*variables, tf.TensorSpec((CPU_FULL_SNAPSHOT_BYTES // 4,), tf.float32)]
    plan = plan_snapshot(big, device="CPU", device_free=10**12, statistics=stats)
    assert plan.where == "partial" and plan.bytes == state.state_bytes(stats)
    assert "finite gradients" in plan.why
    # a GPU keeps its whole copy when it has the room
    assert plan_snapshot(big, device="GPU:0", device_free=10**13,
                         statistics=stats).where == "device"


def test_the_partial_snapshot_undoes_a_non_finite_statistic():
    """A NaN batch turns BatchNormalization's moving statistics NaN in the forward pass: the
    partial snapshot (statistics only) puts them back, and the update is not applied."""
    from nandoc.watch.state import SnapshotPlan
    from nandoc.watch.step import WatchedStep

    m = _bn_model()
    step = WatchedStep(m, snapshot=SnapshotPlan("partial", 0, 0, "test budget"))
    assert len(step._snapshot) == len(m.non_trainable_variables) > 0
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = x[:, :1]
    assert step.train(x, y).ok
    before = [np.array(v.numpy()) for v in m.variables]
    bad = x.copy()
    bad[0, 0] = np.nan
    assert not step.train(bad, y).ok
    after = [np.array(v.numpy()) for v in m.variables]
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def _jump_inputs():
    """An MLP whose learning rate jumps to 1e38 after 3 steps: the 4th update overflows from
    finite gradients (the case a partial snapshot cannot undo by itself)."""
    import keras

    from nandoc.config import Config, TrainConfig
    from nandoc.engine.inputs import Inputs
    from nandoc.loading.array_data import array_dataset
    from nandoc.loading.model import describe_losses
    from nandoc.loading.structured import Arrays

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ np.arange(1, 5) * 30).astype("float32")[:, None]
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1)])
    rate = keras.optimizers.schedules.PiecewiseConstantDecay([2], [1e-3, 1e38])
    m.compile(keras.optimizers.SGD(learning_rate=rate), "mse")
    cfg = Config(train=TrainConfig(batch_size=32, epochs=2))
    data, _ = array_dataset(Arrays({"x": x}, {"y": y}, ("x",), ("y",)), np.arange(1, 257), cfg,
                            Path("arrays"), "arrays")
    return Inputs(config=cfg, model=m, data=data, loss=describe_losses(m))


def _finite_weights(model) -> bool:
    return all(np.isfinite(np.asarray(v)).all() for v in model.weights)


def test_a_partial_snapshot_is_rewound_to_the_last_finite_weights(monkeypatch):
    import nandoc.watch.state as state
    from nandoc.drivers.training import train_watched

    full = train_watched(_jump_inputs(), epochs=2)  # the whole state copied in the step
    assert full.snapshot is None and full.first.where == "update"
    monkeypatch.setattr(state, "CPU_FULL_SNAPSHOT_BYTES", 0)  # as for a model of 100 M weights
    inputs = _jump_inputs()
    partial = train_watched(inputs, epochs=2)
    assert partial.snapshot["where"] == "partial"
    assert partial.snapshot["rewound"].startswith("yes: the 3 steps before the failing one")
    # the same failing step, localised the same way, from the same weights
    assert (partial.failure.global_step, partial.first.where, partial.first.op) == \
        (full.failure.global_step, full.first.where, full.first.op) == (4, "update", "Mul")
    assert _finite_weights(inputs.model)


def test_a_partial_snapshot_not_rewound_says_so(monkeypatch):
    import nandoc.drivers.training as training
    import nandoc.watch.state as state

    monkeypatch.setattr(state, "CPU_FULL_SNAPSHOT_BYTES", 0)
    monkeypatch.setattr(training, "REWIND_MAX_S", -1.0)  # a run too long to re-run
    inputs = _jump_inputs()
    run = training.train_watched(inputs, epochs=2)
    assert run.snapshot["rewound"].startswith("no: training to the failure took")
    assert not _finite_weights(inputs.model) and run.first.where != "update"


def test_the_text_report_says_where_the_snapshot_went_and_the_rewind(monkeypatch):
    import nandoc.watch.state as state
    from nandoc.drivers.training import observe, train_watched
    from nandoc.engine import diagnosis
    from nandoc.render import Format, render

    monkeypatch.setattr(state, "CPU_FULL_SNAPSHOT_BYTES", 0)
    inputs = _jump_inputs()
    training = train_watched(inputs, epochs=2)
    d = diagnosis.examine(inputs, 0.0)
    observe(d, inputs, training)
    report = diagnosis.build_report(d, "replay", extra={"replay": {"steps_ran": 4},
                                                        "snapshot": training.snapshot})
    text = render(report, Format.TEXT)
    assert "snapshot  partial: a full copy of the weights" in text
    assert "rewound to the last finite weights: yes: the 3 steps" in text
    html = render(report, Format.HTML)
    assert "snapshot partial: a full copy of the weights" in html
    assert "Rewound to the last finite weights: yes: the 3 steps" in html
