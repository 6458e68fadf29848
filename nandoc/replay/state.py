"""Host copies of a model's and its optimizer's variables, and optimizer overrides."""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.config import TrainConfig


def snapshot(model: Any) -> list[np.ndarray]:
    return [np.array(v.numpy(), copy=True) for v in _state(model)]


def restore(model: Any, values: list[np.ndarray]) -> None:
    for var, value in zip(_state(model), values):
        var.assign(value)


def _state(model: Any) -> list[Any]:
    opt = getattr(model, "optimizer", None)
    return list(model.variables) + (list(opt.variables) if opt is not None else [])


def optimizer_like(optimizer: Any, *, learning_rate: float | None = None,
                   clipnorm: float | None = None, name: str | None = None) -> Any:
    """A fresh optimizer of the same class and settings, with the given changes."""
    import keras

    config = optimizer.get_config()
    if name is not None and name.lower() != config.get("name", "").lower():
        fresh = keras.optimizers.get(name)
        config = {**fresh.get_config(), "learning_rate": config.get("learning_rate")}
        cls = type(fresh)
    else:
        cls = type(optimizer)
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    if clipnorm is not None:
        config["clipnorm"] = clipnorm
        config["global_clipnorm"] = None
    config.pop("name", None)
    return cls.from_config(config)


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
