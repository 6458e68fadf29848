"""An eager forward and backward pass through a model, layer by layer, on one real batch.

Functional models (and Sequential ones, which wrap a functional graph once built) are run
through their own graph with `_run_through_graph`, whose `operation_fn` hook lets every layer's
call be wrapped by a `recorder.Recorder`: its inputs and outputs pass through taps that keep
their gradients during one non-persistent `GradientTape`'s backward pass (the gradient flowing
into *this* layer's input told apart from the one flowing into its siblings). Nested
Functional/Sequential sub-models are entered and their layers recorded as "outer/inner". A
subclassed model is run as a single "layer": its `call` is Python nobody can step through from
outside.

The pass runs with `training=True`, as a training step does: BatchNormalization normalises with
the batch's own statistics (the values that overflow in training, not the moving averages) and
Dropout is active, with its seed generators set from `seed` so that passes repeat. Every
non-trainable variable (moving statistics, seed states) is restored afterwards: the user's model
leaves the pass as it came in. One `tape.gradient` call gives the gradient of the compiled loss
(regularisation included) w.r.t. every layer output, layer input and trainable weight.

Everything returned is plain data (floats, bools, strings, small numpy arrays), no tensors:
the records and the localisation of the first non-finite value are in `layer_records`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nandoc.instrument.batches import Batch
from nandoc.instrument.layer_records import (  # noqa: F401  (re-exported)
    FLOAT16_MAX,
    LayerPass,
    LayerRecord,
    WeightRecord,
    histogram_of,
    locate,
)
from nandoc.instrument.measure import as_numpy as _numpy
from nandoc.instrument.measure import compact_gradient
from nandoc.instrument.measure import grad_summary as _grad_summary
from nandoc.instrument.measure import max_abs as _max_abs
from nandoc.instrument.measure import stats as _stats
from nandoc.instrument.measure import summary as _summary
from nandoc.instrument.recorder import Call, Recorder
from nandoc.loading.named import feed


def _functional_of(model: Any) -> Any:
    """The functional graph a model runs through, or None for a subclassed model."""
    from keras.src.models.functional import Functional
    from keras.src.models.sequential import Sequential

    if isinstance(model, Sequential):
        return model._functional  # None until built with a known input shape
    if isinstance(model, Functional) and type(model).call is Functional.call:
        return model
    return None


def _is_model(op: Any) -> bool:
    import keras

    return isinstance(op, keras.Model)


def _run_graph(model: Any, inputs: Any, rec: Recorder, prefix: str) -> Any:
    """Run `model` layer by layer, entering nested models; returns its outputs."""
    from keras import tree
    from keras.src.models.sequential import Sequential

    def operation_fn(op: Any):
        def call(*args: Any, **kwargs: Any) -> Any:
            name = prefix + op.name
            if _is_model(op) and (_functional_of(op) is not None or isinstance(op, Sequential)):
                first = args[0] if args else next(iter(kwargs.values()))
                return _run_graph(op, first, rec, name + "/")
            return rec.run_leaf(name, op, args, kwargs)

        return call

    graph = _functional_of(model)
    if graph is None:  # a Sequential that was never built on an input shape: its layers in order
        x = inputs
        for layer in model.layers:
            x = operation_fn(layer)(x)
        return x
    trained = any(rec.depends_on_weights(t) for t in tree.flatten(inputs))
    try:
        flat = graph._standardize_inputs(inputs)
    except Exception:
        flat = tree.flatten(inputs)
    for t in tree.flatten(flat):
        rec.mark(t, trained)
    return graph._run_through_graph(flat, operation_fn=operation_fn)


def _has_compiled_loss(model: Any) -> bool:
    return getattr(model, "_compile_loss", None) is not None


def _loss_value(model: Any, loss: Any, x: Any, y: Any, y_pred: Any) -> Any:
    """The loss a training step minimises: the compiled loss plus regularisation losses."""
    import keras

    if _has_compiled_loss(model):
        return model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
    infos = [li for li in (loss if isinstance(loss, (list, tuple)) else [loss])
             if li is not None and callable(getattr(li, "fn", None))]
    if not infos:
        return None
    total = keras.ops.mean(infos[0].fn(y, y_pred))
    for extra in model.losses:
        total = total + keras.ops.cast(extra, total.dtype)
    return total


def _reset_seeds(model: Any, seed: int) -> None:
    for i, layer in enumerate(model._flatten_layers(include_self=True)):
        for j, gen in enumerate(getattr(layer, "_seed_generators", ())):
            state = gen.state
            state.assign(np.array([seed + 1000 * i + j, 0], dtype=state.dtype))


def run_layer_pass(model: Any, loss: Any, batch: Batch, seed: int = 0,
                   weight_health: dict[int, tuple[bool, float, float]] | None = None
                   ) -> LayerPass:
    """Run `batch` forward layer by layer and back, and measure every layer and weight.

    `loss` is a LossInfo, a list of them, or None; the model's compiled loss is used when it
    has one. A loss that raises leaves `loss_error` set and the forward measurements intact.
    The gradients are those of the unscaled loss, as a LossScaleOptimizer unscales them.
    `weight_health`: measurements of the weights shared by passes that run on the same
    weights (filled by the first; a 50 M-parameter model's weights are read once, not per
    pass). Leave it None when the weights may have changed since it was filled.
    """
    started = time.perf_counter()
    saved = [(v, _numpy(v.value).copy()) for v in model.non_trainable_variables]
    try:
        with warnings.catch_warnings():  # Keras' own warnings are for the user's training run
            warnings.simplefilter("ignore")
            _reset_seeds(model, seed)
            mode, rec, y_pred, total, loss_error, grads, backward_error = \
                _forward_backward(model, loss, batch)
    finally:
        for v, value in saved:
            v.assign(value)
    return LayerPass(
        batch=batch, mode=mode,
        input_finite=bool(np.isfinite(batch.x).all()),
        target_finite=bool(np.isfinite(batch.y).all()),
        input_max_abs=_max_abs(batch.x),
        layers=_records(rec.calls, grads, batch.rows,
                        {} if weight_health is None else weight_health),
        y_pred=_first_output(y_pred),
        loss=float(_numpy(total)) if total is not None else None, loss_error=loss_error,
        backward_error=backward_error, seconds=time.perf_counter() - started,
    )


def _forward_backward(model: Any, loss: Any, batch: Batch) -> tuple:
    import tensorflow as tf

    with tf.GradientTape(persistent=False) as tape:
        x = _input_tensor(model, batch.x, tf)
        rec = Recorder(tape, tf)
        rec.mark(x, False)
        if _functional_of(model) is not None or _is_sequential(model):
            mode = "layers"
            y_pred = _run_graph(model, x, rec, "")
        else:
            mode = "whole-model"
            y_pred = rec.run_leaf(model.name, model, (x,), {})
        total, loss_error = None, None
        try:
            total = _loss_value(model, loss, x, _target_tensor(batch.y, tf), y_pred)
        except Exception as exc:  # the user's loss: anything can raise
            loss_error = _describe(exc)
    # gradient sources: the outputs computed from the data alone, and the weights; every
    # other output's and input's gradient is kept by its tap during the same backward pass
    # (tensors as sources, where one is computed from another, make TensorFlow 2.21 keep one
    # of them alive after the pass: a batch of activations leaked per pass, measured)
    data_outputs = [t for c in rec.calls
                    for t, slot in zip(c.outputs, c.out_slots, strict=True) if slot is None]
    sources = data_outputs + [w for c in rec.calls for w in c.weights]
    n_in = sum(len(c.inputs) for c in rec.calls)
    n_out = sum(len(c.outputs) for c in rec.calls)
    grads: list[Any] = [None] * (n_out + n_in + len(sources) - len(data_outputs))
    backward_error = None
    if total is not None and sources:
        try:
            found = tape.gradient(total, sources)
            from_sources = iter(found[:len(data_outputs)])
            outs = [rec.grads[slot] if slot is not None else next(from_sources)
                    for c in rec.calls for slot in c.out_slots]
            ins = [rec.grads[slot] for c in rec.calls for slot in c.inputs]
            # An Embedding's gradient is sparse (IndexedSlices): the rows it touches, each
            # summed over its repeats, as the optimizer applies it (not a dense copy).
            grads = [compact_gradient(g) if g is not None else None
                     for g in [*outs, *ins, *found[len(data_outputs):]]]
        except Exception as exc:  # an op without a gradient, say
            backward_error = _describe(exc)
    return mode, rec, y_pred, total, loss_error, grads, backward_error


def _is_sequential(model: Any) -> bool:
    from keras.src.models.sequential import Sequential

    return isinstance(model, Sequential)


def _target_tensor(y: Any, tf: Any) -> Any:
    y = feed(y)
    if isinstance(y, dict):
        return {k: tf.convert_to_tensor(v) for k, v in y.items()}
    return tf.convert_to_tensor(y)


def _input_tensor(model: Any, x: Any, tf: Any) -> Any:
    inputs = list(getattr(model, "inputs", None) or [])
    x = feed(x)
    if isinstance(x, dict):
        dtypes = {str(getattr(t, "name", "")).split(":")[0]: getattr(t, "dtype", None)
                  for t in inputs}
        return {k: tf.convert_to_tensor(v, dtype=dtypes.get(k) or "float32")
                for k, v in x.items()}
    dtype = getattr(inputs[0], "dtype", None) if len(inputs) == 1 else None
    return tf.convert_to_tensor(x, dtype=dtype or "float32")


def _first_output(y_pred: Any) -> np.ndarray | None:
    from keras import tree

    flat = tree.flatten(y_pred)
    return _numpy(flat[0]).astype(np.float32) if flat else None


def _describe(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def _weight_names(c: Call) -> list[str]:
    """'layer/kernel', or where names repeat in a layer (a Bidirectional's directions, an
    attention's query/key/value, a subclassed model's sublayers) the path: 'mha/query/kernel'."""
    names = [w.name for w in c.weights]
    if len(set(names)) < len(names):
        own = c.name.rsplit("/", 1)[-1]
        names = [str(getattr(w, "path", w.name)) for w in c.weights]
        names = [n[len(own) + 1:] if n.startswith(own + "/") else n for n in names]
    return [f"{c.name}/{n}" for n in names]


def _records(calls: list[Call], grads: Sequence[Any], rows: np.ndarray,
             weight_health: dict[int, tuple[bool, float, float]]) -> tuple[LayerRecord, ...]:
    n_out = sum(len(c.outputs) for c in calls)
    n_in = sum(len(c.inputs) for c in calls)
    out_grads, in_grads, w_grads = grads[:n_out], grads[n_out:n_out + n_in], grads[n_out + n_in:]
    records = []
    io = ii = iw = 0
    for c in calls:
        og = list(out_grads[io:io + len(c.outputs)])
        ig = list(in_grads[ii:ii + len(c.inputs)])
        wg = list(w_grads[iw:iw + len(c.weights)])
        io, ii, iw = io + len(c.outputs), ii + len(c.inputs), iw + len(c.weights)
        stats = _stats([_numpy(t) for t in c.outputs], rows)
        dtype = c.outputs[0].dtype.name if c.outputs else "none"
        max_abs = stats["max_abs"]
        headroom = None if dtype != "float16" else (
            0.0 if not np.isfinite(max_abs) else FLOAT16_MAX / max_abs if max_abs > 0 else np.inf)
        grad_norm, grad_finite = _grad_summary(og)
        _, in_finite = _grad_summary(ig)
        weights = []
        for w, g, w_name in zip(c.weights, wg, _weight_names(c), strict=True):
            if id(w) not in weight_health:
                weight_health[id(w)] = _summary(w.value)  # measured where it lives
            finite_w, max_abs_w, _ = weight_health[id(w)]
            norm, finite = _grad_summary([g])
            weights.append(WeightRecord(
                name=w_name, layer=c.name, path=str(getattr(w, "path", w.name)),
                finite=finite_w, max_abs=0.0 if np.isnan(max_abs_w) else max_abs_w,
                grad_norm=norm, grad_finite=finite,
            ))
        records.append(LayerRecord(
            name=c.name, class_name=type(c.layer).__name__, dtype=dtype,
            inputs_finite=c.inputs_finite, finite_fraction=stats["finite_fraction"],
            max_abs=max_abs, min=stats["min"], max=stats["max"], fp16_headroom=headroom,
            nonfinite_rows=stats["nonfinite_rows"], grad_norm=grad_norm, grad_finite=grad_finite,
            input_grad_finite=in_finite, weights=tuple(weights), histogram=stats.get("histogram"),
        ))
    return tuple(records)
