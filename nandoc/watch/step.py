"""The watched train step: one compiled function that trains like `fit` and measures itself.

Per step it returns the loss, the global and per-layer gradient norms, per-layer finiteness of
gradients and of weights. Before the step it snapshots every model and optimizer variable on the
device; the update is applied only when the loss and every gradient are finite, and if the
forward pass (BatchNormalization statistics) or the update itself leaves a non-finite variable,
the snapshot is restored inside the same step. So the state after a failing step is exactly the
last finite state, and nothing has to be copied to the host while training is healthy.

That copy is as large as the state itself (weights and optimizer moments: 3x the weights with
Adam), so it is planned first (`watch.state.plan_snapshot`): when it does not fit in half the
free memory of the device, it is taken on the host before every step (a GPU short of memory)
or skipped (then a non-finite update is still never applied, but a non-finite BatchNormalization
statistic or update stays); a big model on a CPU copies only its statistics ("partial": a
non-finite update computed from finite gradients stays). `snapshot_plan.as_extra()` is what
the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoc.watch.state import SnapshotPlan, plan_snapshot


@dataclass(frozen=True)
class StepStats:
    """One step's measurements, on the host."""

    loss: float
    grad_norm: float  # global L2 norm over all gradients (inf/nan when one is)
    layer_grad_norms: np.ndarray  # (n_layers,)
    layer_grad_finite: np.ndarray  # (n_layers,) bool
    layer_weight_finite: np.ndarray  # (n_layers,) bool, after the step (before any restore)
    state_finite: bool  # every model variable finite after the forward pass and the update
    applied: bool  # the update was kept

    @property
    def ok(self) -> bool:
        return self.applied


def _layer_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else path


def _owners(model: Any) -> dict[int, str]:
    """Trainable variable (by id) -> the layer that holds it, named as the layer pass names
    layers: 'outer/inner' inside a nested model; a wrapper's (Bidirectional, TimeDistributed)
    and an attention's inner weights are the layer's own, not one group per sublayer."""
    import keras

    out: dict[int, str] = {}

    def visit(container: Any, prefix: str) -> None:
        for layer in getattr(container, "layers", None) or []:
            path = prefix + layer.name
            if isinstance(layer, keras.Model) and layer.layers:
                visit(layer, path + "/")
            for v in layer.trainable_variables:
                out.setdefault(id(v), path)

    visit(model, "")
    return out


def _device_of(variables: list[Any]) -> str:
    """'GPU:0' or 'CPU': where the first variable lives."""
    for v in variables:
        name = str(getattr(getattr(v, "value", v), "device", "") or "")
        if "GPU" in name.upper():
            return "GPU:" + name.rsplit(":", 1)[-1]
        if name:
            return "CPU"
    return "CPU"


class WatchedStep:
    """Compiled train and validation steps for `model` with its compiled loss and optimizer."""

    def __init__(self, model: Any, jit_compile: bool = False,
                 snapshot: SnapshotPlan | None = None):
        """`snapshot`: where to keep the restore copy; planned against the free memory of
        the device the variables live on when None."""
        import tensorflow as tf

        self.model = model
        self.optimizer = model.optimizer
        self.trainable = list(model.trainable_variables)
        self.optimizer.build(self.trainable)
        self.state = list(model.variables) + list(self.optimizer.variables)
        statistics = list(model.non_trainable_variables)
        self.snapshot_plan = snapshot or plan_snapshot(self.state, device=_device_of(self.state),
                                                       statistics=statistics)
        where = self.snapshot_plan.where
        # the variables the snapshot covers, and their copies on the device
        self._covered = self.state if where == "device" else \
            statistics if where == "partial" else []
        self._snapshot = [tf.Variable(v, trainable=False, name="nandoc_snapshot")
                          for v in self._covered]
        self._host: list[np.ndarray] | None = None
        owners = _owners(model)
        paths = [owners.get(id(v)) or _layer_of(getattr(v, "path", v.name))
                 for v in self.trainable]
        self.layers: list[str] = list(dict.fromkeys(paths))
        index = {name: i for i, name in enumerate(self.layers)}
        self._groups = [index[p] for p in paths]
        # No autograph, as Keras' own compiled step: a Python `if` on a tensor fails here as
        # it fails in fit.
        self._train = tf.function(self._train_step, jit_compile=jit_compile,
                                  reduce_retracing=True, autograph=False)
        self._val = tf.function(self._val_step, reduce_retracing=True, autograph=False)

    def _train_step(self, x, y):
        import tensorflow as tf

        for snap, var in zip(self._snapshot, self._covered, strict=True):
            snap.assign(var)
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        grads = tape.gradient(loss, self.trainable)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, self.trainable, strict=True)]
        sq = tf.stack([tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads])
        layer_sq = tf.math.unsorted_segment_sum(sq, self._groups, len(self.layers))
        layer_fin = tf.math.is_finite(layer_sq)
        grads_ok = tf.math.is_finite(tf.cast(loss, tf.float32)) & tf.reduce_all(layer_fin)

        def apply():
            self.optimizer.apply(grads, self.trainable)
            return tf.constant(True)

        tf.cond(grads_ok, apply, lambda: tf.constant(False))
        wfin = tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in self.trainable])
        layer_wfin = tf.math.unsorted_segment_min(tf.cast(wfin, tf.int32), self._groups,
                                                  len(self.layers)) > 0
        state_ok = tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(v)) for v in self.model.variables
             if "float" in str(v.dtype)])
        keep = grads_ok & state_ok

        def restore():
            for snap, var in zip(self._snapshot, self._covered, strict=True):  # none off-device
                var.assign(snap)
            return tf.constant(False)

        applied = tf.cond(keep, lambda: tf.constant(True), restore)
        return (tf.cast(loss, tf.float32), tf.sqrt(tf.reduce_sum(sq)), tf.sqrt(layer_sq),
                layer_fin, layer_wfin, state_ok, applied)

    def _val_step(self, x, y):
        import tensorflow as tf

        y_pred = self.model(x, training=False)
        loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        return tf.cast(loss, tf.float32)

    def train(self, x: np.ndarray, y: np.ndarray) -> StepStats:
        if self.snapshot_plan.where == "host":
            self._host = [np.array(v.numpy(), copy=True) for v in self.state]
        out = self._train(x, y)
        loss, gnorm, lnorms, lfin, lwfin, state_ok, applied = (o.numpy() for o in out)
        if not applied and self._host is not None:
            for var, value in zip(self.state, self._host, strict=True):
                var.assign(value)
        return StepStats(float(loss), float(gnorm), lnorms, lfin, lwfin, bool(state_ok),
                         bool(applied))

    def validate(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self._val(x, y).numpy())
