"""The recorder a layer pass runs every layer call through (see `layers.py`).

Each call's float inputs and outputs that depend on a trainable weight go on through a *tap*:
an identity whose gradient function keeps the gradient it passes on, so one backward pass
gives the gradient flowing into every layer's input (told apart from its siblings') and out of
every layer's output, with only the weights (and the outputs computed from the data alone) as
gradient sources. Asking a `GradientTape` for tensors as sources, where one is computed from
another, makes TensorFlow 2.21 keep one of them alive after the pass: a batch of activations
leaked per pass on a 50 M-parameter transformer, measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoc.instrument.measure import as_numpy as _numpy
from nandoc.instrument.measure import is_float as _is_float


@dataclass
class Call:
    """A layer call while the pass runs (holds tensors; turned into a LayerRecord after)."""

    name: str
    layer: Any
    inputs: list[int]  # slots in _Recorder.grads: the float inputs' gradients
    inputs_finite: bool
    outputs: list[Any]
    weights: list[Any]  # trainable variables first seen at this call
    out_slots: list[int | None]  # per output: its slot in _Recorder.grads, None: a source


class Recorder:
    """Runs layer calls and keeps what the backward pass and the records need.

    Per tensor (by id; the tensor is kept alive next to its entry so the id cannot be reused):
    whether it is finite, and whether it depends on a trainable weight. Only inputs that do are
    copied and watched: training never differentiates w.r.t. the data or what is computed from
    it by weightless layers, so a non-finite gradient there (a float16 overflow of d loss / d x,
    say) would be a false alarm.
    """

    def __init__(self, tape: Any, tf: Any) -> None:
        self.tape, self.tf = tape, tf
        self.calls: list[Call] = []
        self.finite: dict[int, tuple[Any, bool]] = {}
        self.trained: dict[int, tuple[Any, bool]] = {}
        self.seen_weights: set[int] = set()
        self.grads: list[Any] = []  # filled by the backward pass (see gradient_tap)

    def is_finite(self, t: Any) -> bool:
        key = id(t)
        if key not in self.finite:
            self.finite[key] = (t, bool(np.isfinite(_numpy(t)).all()))
        return self.finite[key][1]

    def depends_on_weights(self, t: Any) -> bool:
        entry = self.trained.get(id(t))
        return entry is not None and entry[1]

    def mark(self, t: Any, trained: bool) -> None:
        if id(t) not in self.trained:
            self.trained[id(t)] = (t, trained)

    def _tapped(self, t: Any, slots: list[int | None]) -> Any:
        """`t` through a tap that keeps its gradient in self.grads (slot appended to `slots`);
        a tensor a tap cannot wrap (ragged, sparse) is returned as it is, with slot None."""
        if not isinstance(t, self.tf.Tensor):
            slots.append(None)
            return t
        from keras.src import backend

        slot = len(self.grads)
        self.grads.append(None)
        copy = gradient_tap(self.tf, self.grads, slot)(t)
        mask = backend.get_keras_mask(t)
        if mask is not None:
            backend.set_keras_mask(copy, mask)
        slots.append(slot)
        return copy

    def _watched_copy(self, t: Any, copies: list[int]) -> Any:
        if not _is_float(t) or not self.depends_on_weights(t):
            return t
        slots: list[int | None] = []
        copy = self._tapped(t, slots)
        if slots[0] is not None:
            copies.append(slots[0])
        return copy

    def run_leaf(self, name: str, op: Any, args: tuple, kwargs: dict) -> Any:
        from keras import tree
        from keras.layers import Layer

        floats = [t for t in tree.flatten((args, kwargs)) if _is_float(t)]
        inputs_finite = all(self.is_finite(t) for t in floats)
        trained = any(self.depends_on_weights(t) for t in floats) or \
            bool(getattr(op, "trainable_weights", ()))
        copies: list[int] = []
        args, kwargs = tree.map_structure(lambda t: self._watched_copy(t, copies), (args, kwargs))
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs = {**kwargs, "training": True}
        out_slots: list[int | None] = []

        def record(t: Any) -> Any:
            # an output that depends on the weights goes on through a tap (its gradient is
            # kept in the backward pass); one computed from the data alone is watched and
            # asked for as a gradient source
            if not _is_float(t):
                return t
            if trained:
                t = self._tapped(t, out_slots)
            else:
                out_slots.append(None)
            if out_slots[-1] is None:
                self.tape.watch(t)
            self.mark(t, trained)
            return t

        outputs = tree.map_structure(record, op(*args, **kwargs))
        flat = [t for t in tree.flatten(outputs) if _is_float(t)]
        weights = [w for w in getattr(op, "trainable_weights", ())
                   if id(w) not in self.seen_weights]
        self.seen_weights.update(id(w) for w in weights)
        if flat or weights or isinstance(op, Layer):  # not an op of the graph that computes
            # no float (an Embedding(mask_zero=True)'s mask): nothing to measure, nothing to name
            self.calls.append(Call(name, op, copies, inputs_finite, flat, weights, out_slots))
        return outputs


def gradient_tap(tf: Any, store: list[Any], slot: int) -> Any:
    """An identity whose gradient function stores the gradient it passes on in store[slot]."""

    @tf.custom_gradient
    def tap(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            store[slot] = dy
            return dy

        return tf.identity(x), grad

    return tap
