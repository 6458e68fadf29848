"""The changes that candidate fixes make to a trial copy of the run (see nandoc.core.fixes):
data cleaning and scaling, a swapped activation, a clipped loss, optimizer settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from nandoc.core.fixes import Trial
from nandoc.loading.dataset import Dataset, Split
from nandoc.loading.named import Named


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



def _map_splits(data: Dataset, fn: Callable[[Split], Split]) -> Dataset:
    return replace(data, train=fn(data.train), val=fn(data.val) if data.val else None)


def _drop_nonfinite(s: Split) -> Split:
    keep = np.isfinite(s.x.reshape(s.n, -1)).all(axis=1) & np.isfinite(s.y.reshape(s.n, -1)).all(
        axis=1)
    return replace(s, x=s.x[keep], y=s.y[keep], rows=s.rows[keep])


def drop_nonfinite_rows(t: Trial) -> None:
    t.data = _map_splits(t.data, _drop_nonfinite)


def robust_scale(t: Trial) -> None:
    """Median/IQR scaling per feature (the last axis of each input array), fitted on the
    training samples and applied to every split."""
    train = t.data.train
    arrays = train.x.arrays if isinstance(train.x, Named) else {"": train.x}
    fitted = {}
    for key, x in arrays.items():
        flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1] if x.ndim > 1 else 1)
        med = np.nanmedian(flat, axis=0)
        iqr = np.nanpercentile(flat, 75, axis=0) - np.nanpercentile(flat, 25, axis=0)
        fitted[key] = (med, np.where(iqr > 0, iqr, 1.0))

    def one(key: str, x: np.ndarray) -> np.ndarray:
        med, iqr = fitted[key]
        shape = x.shape
        flat = x.reshape(-1, shape[-1] if x.ndim > 1 else 1)
        return ((flat - med) / iqr).astype(np.float32).reshape(shape)

    def scale(s: Split) -> Split:
        if isinstance(s.x, Named):
            return replace(s, x=Named({k: one(k, v) for k, v in s.x.items()}))
        return replace(s, x=one("", s.x))

    t.data = _map_splits(t.data, scale)


def find_layer(model: Any, name: str) -> Any:
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            try:
                return find_layer(layer, name)
            except KeyError:
                continue
    raise KeyError(name)


def sigmoid_for(name: str) -> Callable[[Trial], None]:
    def apply(t: Trial) -> None:
        import keras

        find_layer(t.model, name).activation = keras.activations.sigmoid

    return apply


def clip_loss_input(t: Trial) -> None:
    """The loss sees y_pred clipped to [1e-7, 1 - 1e-7]."""
    from keras import ops

    loss = t.loss

    def clipped(y_true, y_pred):
        return loss(y_true, ops.clip(y_pred, 1e-7, 1 - 1e-7))

    clipped.__name__ = f"clipped_{getattr(loss, '__name__', 'loss')}"
    t.loss = clipped


def clipnorm(value: float) -> Callable[[Trial], None]:
    def apply(t: Trial) -> None:
        t.optimizer = optimizer_like(t.optimizer, clipnorm=value)

    return apply


def scale_learning_rate(factor: float) -> Callable[[Trial], None]:
    def apply(t: Trial) -> None:
        lr = float(np.asarray(t.optimizer.learning_rate))
        t.optimizer = optimizer_like(t.optimizer, learning_rate=lr * factor)

    return apply


def replace_loss(namespace_of: Callable[[], dict[str, Any] | None], function: str,
                 what: str) -> Callable[[Trial], None]:
    """The loss becomes `function` from a rewritten copy of the user's module."""
    def apply(t: Trial) -> None:
        namespace = namespace_of()
        if namespace is None or function not in namespace:
            raise ValueError(f"no {what} to rewrite")
        t.loss = namespace[function]

    return apply
