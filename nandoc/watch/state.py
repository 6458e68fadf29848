"""A model's training state (its variables and its optimizer's), copied and put back: on the host
(replay's initial and failure states), or on the device (the callback's last finite weights).
The watched step keeps its own in-graph copy of the same variables."""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.analysis.remedies import optimizer_like
from nandoc.config import TrainConfig


def state_variables(model: Any) -> list[Any]:
    """Everything a restore must put back: the model's variables and the optimizer's state."""
    opt = getattr(model, "optimizer", None)
    return list(model.variables) + (list(opt.variables) if opt is not None else [])


def snapshot(model: Any) -> list[np.ndarray]:
    """A host copy of the model's state."""
    return [np.array(v.numpy(), copy=True) for v in state_variables(model)]


def restore(model: Any, values: list[np.ndarray]) -> None:
    for var, value in zip(state_variables(model), values):
        var.assign(value)


class DeviceSnapshot:
    """A copy of the model's state kept on its device, taken by one compiled call (rebuilt
    when the set of variables changes: an optimizer builds its state in the first step)."""

    def __init__(self) -> None:
        self._copy: Any = None
        self._ids: list[int] = []
        self.values: list[Any] | None = None
        self.variables: list[Any] = []

    def take(self, model: Any) -> None:
        import tensorflow as tf

        variables = state_variables(model)
        if [id(v) for v in variables] != self._ids:
            self._copy = tf.function(lambda: [tf.identity(v) for v in variables])
            self._ids = [id(v) for v in variables]
        self.values = self._copy()
        self.variables = variables

    def complete(self, model: Any) -> bool:
        """Whether the copy holds every variable the model has now."""
        return self.values is not None and len(self.variables) == len(state_variables(model))

    def restore(self) -> bool:
        if self.values is None:
            return False
        for v, value in zip(self.variables, self.values, strict=True):
            v.assign(value)
        return True

    def clear(self) -> None:
        self.values, self.variables = None, []


def copy_optimizer_state(src: Any, dst: Any, variables: list[Any]) -> None:
    """Carry Adam moments and the iteration count over when the shapes line up; never the
    learning rate, which Keras 3 keeps as a variable and a fix may have changed."""
    dst.build(variables)
    for a, b in zip(src.variables, dst.variables):
        name = getattr(b, "path", None) or b.name
        if "learning_rate" in name:
            continue
        if tuple(a.shape) == tuple(b.shape):
            b.assign(a)


def apply_overrides(model: Any, train: TrainConfig) -> bool:
    """[train] optimizer / learning_rate / clipnorm override what the model was compiled with."""
    if train.optimizer is None and train.learning_rate is None and train.clipnorm is None:
        return False
    opt = optimizer_like(model.optimizer, learning_rate=train.learning_rate,
                         clipnorm=train.clipnorm, name=train.optimizer)
    model.compile(optimizer=opt, loss=model.loss)
    return True
