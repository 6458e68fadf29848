"""Verified fixes: apply a candidate fix to a fresh copy restored to the last finite state, re-run
the failing step and what follows, and say whether it stays NaN-free."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nandoc.core.finding import Finding, VerifiedFix
from nandoc.loading.dataset import Dataset, Split
from nandoc.replay import loop
from nandoc.replay.state import copy_optimizer_state, optimizer_like, restore
from nandoc.replay.watch import WatchedStep


@dataclass
class Trial:
    """What a candidate may change: the model (a clone), its optimizer and loss, the data."""

    model: Any
    optimizer: Any
    loss: Any
    data: Dataset


@dataclass(frozen=True)
class Candidate:
    cause: str
    change: str
    apply: Callable[[Trial], None]
    # Training-dynamics fixes (learning rate, clipping) are tried from the run's first step:
    # the state just before such a NaN has already blown up, and no fix can save it.
    from_start: bool = False


def _clip_loss(loss: Any) -> Any:
    from keras import ops

    def clipped(y_true, y_pred):
        return loss(y_true, ops.clip(y_pred, 1e-7, 1 - 1e-7))

    clipped.__name__ = f"clipped_{getattr(loss, '__name__', 'loss')}"
    return clipped


def _map_splits(data: Dataset, fn: Callable[[Split], Split]) -> Dataset:
    return replace(data, train=fn(data.train), val=fn(data.val) if data.val else None)


def _drop_nonfinite(s: Split) -> Split:
    keep = np.isfinite(s.x.reshape(s.n, -1)).all(axis=1) & np.isfinite(s.y.reshape(s.n, -1)).all(
        axis=1)
    return replace(s, x=s.x[keep], y=s.y[keep], rows=s.rows[keep])


def _robust_scaler(train: Split) -> Callable[[Split], Split]:
    flat = train.x.reshape(-1, train.x.shape[-1]).astype(np.float64)
    med = np.nanmedian(flat, axis=0)
    iqr = np.nanpercentile(flat, 75, axis=0) - np.nanpercentile(flat, 25, axis=0)
    iqr = np.where(iqr > 0, iqr, 1.0)

    def scale(s: Split) -> Split:
        return replace(s, x=((s.x - med) / iqr).astype(np.float32))

    return scale


def candidates(findings: list[Finding]) -> list[Candidate]:
    """Candidate fixes for the top findings, in rank order, one per cause."""
    import keras

    out: list[Candidate] = []
    seen: set[str] = set()
    for f in findings:
        if f.cause in seen:
            continue
        seen.add(f.cause)
        if f.cause == "data-nonfinite":
            out.append(Candidate(
                f.cause, "drop the rows with non-finite values",
                lambda t: setattr(t, "data", _map_splits(t.data, _drop_nonfinite))))
        elif f.cause == "data-unscaled":
            out.append(Candidate(
                f.cause, "scale the features (median/IQR of the training rows)",
                lambda t: setattr(t, "data", _map_splits(t.data, _robust_scaler(t.data.train)))))
        elif f.cause == "softmax-single-unit" and f.location.layer:
            name = f.location.layer.split("/")[-1]

            def to_sigmoid(t: Trial, name: str = name) -> None:
                layer = _find_layer(t.model, name)
                layer.activation = keras.activations.sigmoid

            out.append(Candidate(f.cause, f"sigmoid in place of the softmax of layer '{name}'",
                                 to_sigmoid))
        elif f.cause == "unclipped-log" and f.location.kind == "loss":
            out.append(Candidate(f.cause, "clip y_pred to [1e-7, 1 - 1e-7] inside the loss",
                                 lambda t: setattr(t, "loss", _clip_loss(t.loss))))
        elif f.cause == "exploding-gradients":
            out.append(Candidate(f.cause, "clipnorm=1.0 on the optimizer",
                                 lambda t: setattr(t, "optimizer", optimizer_like(
                                     t.optimizer, clipnorm=1.0)), from_start=True))
        elif (f.cause == "where-gradient-trap" and f.location.file and f.location.line
              and f.measured.get("function")):
            out.append(Candidate(f.cause, f"the double-where rewrite of line {f.location.line}",
                                 lambda t, f=f: _double_where(t, f)))
        elif f.cause == "learning-rate-too-high":
            lr = float(f.measured.get("learning_rate", 0.0)) or None
            for factor in (10, 100):  # the first one that is verified NaN-free is the advice
                change = (f"learning rate {lr / factor:g} (1/{factor})" if lr else
                          f"1/{factor} of the learning rate")
                out.append(Candidate(f.cause, change,
                                     lambda t, k=factor: _scale_lr(t, 1.0 / k),
                                     from_start=True))
    return out


def _double_where(t: Trial, f: Finding) -> None:
    from nandoc.replay.rewrite import double_where

    namespace = double_where(f.location.file, f.location.line,
                             f.measured.get("unsafe_branch", "false"))
    if namespace is None or f.measured["function"] not in namespace:
        raise ValueError(f"no where() at {f.location.file}:{f.location.line} to rewrite")
    t.loss = namespace[f.measured["function"]]


def _scale_lr(t: Trial, factor: float) -> None:
    lr = float(np.asarray(t.optimizer.learning_rate))
    t.optimizer = optimizer_like(t.optimizer, learning_rate=lr * factor)


def _find_layer(model: Any, name: str) -> Any:
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            try:
                return _find_layer(layer, name)
            except KeyError:
                continue
    raise KeyError(name)


def verify(model: Any, state: list[np.ndarray], data: Dataset, candidate: Candidate, *,
           failure: loop.Failure, batch_size: int, shuffle: bool, seed: int,
           initial: list[np.ndarray] | None = None, custom_objects: dict[str, Any] | None = None,
           extra_epochs: int = 1) -> VerifiedFix:
    """Clone the model at the last finite state (or, for training-dynamics fixes, at the first
    step), apply the change, and re-run through the failing step and the next epoch."""
    import keras

    from_start = candidate.from_start and initial is not None
    restore(model, initial if from_start else state)
    with keras.saving.custom_object_scope(custom_objects or {}):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    trial = Trial(clone, optimizer_like(model.optimizer), model.loss, data)
    candidate.apply(trial)
    clone.compile(optimizer=trial.optimizer, loss=trial.loss)
    copy_optimizer_state(model.optimizer, trial.optimizer, clone.trainable_variables)
    watched = WatchedStep(clone)
    if from_start:
        start, skip, epochs = 1, 0, failure.epoch + extra_epochs
    else:  # from the failing step on; a validation failure re-runs that validation first
        start, epochs = failure.epoch, 1 + extra_epochs
        skip = failure.step - 1 if failure.where == "step" else 10**9
    log = loop.run(watched, trial.data.train, trial.data.val, batch_size=batch_size,
                   epochs=epochs, shuffle=shuffle, seed=seed, start_epoch=start,
                   skip_steps=skip)
    if log.stopped_by == "error":
        raise RuntimeError(log.error or "the re-run step failed")
    return VerifiedFix(candidate.change, log.steps_ran,
                       log.steps_ran > 0 and log.stopped_by in ("done", "steps"))
