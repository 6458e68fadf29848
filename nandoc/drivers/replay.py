"""`nandoc replay`, the driver: train a watched copy from the saved model and the configured
data, stop at the first non-finite value, localise it, hand what training showed to the
engine, verify the candidate fixes, and return the Report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.core.ranking import rank
from nandoc.core.records import StepLog
from nandoc.drivers.files import load_inputs
from nandoc.engine import diagnosis, fixes
from nandoc.engine.localise import localise
from nandoc.errors import ConfigError
from nandoc.instrument.batches import Batch
from nandoc.loading.dataset import Dataset
from nandoc.watch import loop
from nandoc.watch.state import apply_overrides, restore, snapshot
from nandoc.watch.step import StepStats, WatchedStep

SERIES_POINTS = 500


def replay(cfg: Config, *, epochs: int | None = None, steps: int | None = None,
           verify_fixes: bool = True,
           progress: Callable[[int, int, int, StepStats], None] | None = None) -> Any:
    started = time.perf_counter()
    # Replay trains on every row, as fit would: no sampling of big files here.
    inputs = load_inputs(cfg, sample=False)
    if inputs.model is None or inputs.data is None:
        raise ConfigError("replay trains the model on the data: give both, as arguments or in "
                          "nandoc.toml ([model] path and [data] path).")
    if not inputs.loss or getattr(inputs.model, "optimizer", None) is None:
        raise ConfigError(f"The model {cfg.model_path} was saved without compile settings "
                          f"(no loss or optimizer), so replay cannot train it as you did. "
                          f"Compile it before model.save(), or set [train] optimizer.")
    d = diagnosis.examine(inputs, started)
    model, data, train = inputs.model, inputs.data, cfg.train
    apply_overrides(model, train)
    initial = snapshot(model)
    run_epochs = epochs if epochs is not None else train.epochs
    run = loop.run(WatchedStep(model), data.train, data.val, batch_size=train.batch_size,
                   epochs=run_epochs, shuffle=train.shuffle, seed=train.seed, max_steps=steps,
                   progress=progress)
    trained = time.perf_counter()
    log, failure = run.log, run.failure
    if log.steps_ran:
        log.learning_rate[-1] = float(np.asarray(model.optimizer.learning_rate))
    extra: dict[str, Any] = {"replay": _summary(log, run_epochs, steps)}
    if log.error:
        extra["replay"]["error"] = log.error
    first, localised = None, []
    if failure is not None:
        loc = localise(model, inputs.loss, _failing_batch(data, failure),
                       epoch=failure.epoch, step=failure.step, sources=inputs.sources,
                       features=data.features, file=data.train.file,
                       hint=_hint(failure), seed=train.seed,
                       validation=failure.where == "validation",
                       suspects=inputs.optional("suspects", ()))
        first, localised = loc.first, loc.findings
    diagnosis.observe(d, log, first, localised,
                      rerun=_rerun(model, initial, data, cfg))
    if failure is not None and verify_fixes:
        ranked = rank(d.findings)
        objects = {k: v for src in inputs.sources for k, v in src.objects.items()}
        d.findings = fixes.verify_all(model, list(ranked), failure=failure, data=data,
                                      batch_size=train.batch_size, shuffle=train.shuffle,
                                      seed=train.seed, initial=initial, custom_objects=objects)
    done = time.perf_counter()
    return diagnosis.build_report(
        d, "replay", extra=extra,
        timings={"train_s": round(trained - started, 3), "total_s": round(done - started, 3)})


def _rerun(model: Any, initial: list[np.ndarray], data: Dataset, cfg: Config
           ) -> Callable[..., StepLog]:
    """The driver's re-training service for the checks: the first `steps` again, from the
    initial weights, with the learning rate scaled; the model is left as it was."""
    from nandoc.analysis.remedies import optimizer_like

    train = cfg.train

    def rerun(learning_rate_factor: float = 1.0, steps: int = 20) -> StepLog:
        end = snapshot(model)
        restore(model, initial)
        original = model.optimizer
        lr = float(np.asarray(original.learning_rate))
        model.compile(optimizer=optimizer_like(original, learning_rate=lr * learning_rate_factor),
                      loss=model.loss)
        try:
            per_epoch = max(-(-data.train.n // train.batch_size), 1)
            slow = loop.run(WatchedStep(model), data.train, None, batch_size=train.batch_size,
                            epochs=max(1, -(-steps // per_epoch)), shuffle=train.shuffle,
                            seed=train.seed, max_steps=steps)
        finally:
            model.compile(optimizer=original, loss=model.loss)
            restore(model, end)
        return slow.log

    return rerun


def _failing_batch(data: Dataset, failure: loop.Failure) -> Batch:
    split = data.val if failure.split == "validation" and data.val is not None else data.train
    idx = failure.indices
    return Batch(name=f"epoch {failure.epoch} step {failure.step}", indices=idx,
                 x=split.x[idx], y=split.y[idx], rows=split.rows[idx],
                 why="the batch of the first non-finite step")


def _hint(failure: loop.Failure) -> str:
    """Where the watched step's own flags put the failure, for when the layer pass from the
    last finite state runs finite."""
    s = failure.stats
    if s is None or not np.isfinite(s.loss):
        return "loss"
    if not bool(np.all(s.layer_grad_finite)):
        return "backward"
    return "update" if s.state_finite is False and bool(np.all(s.layer_weight_finite)) is False \
        else "forward"


def _summary(log: StepLog, epochs: int, steps: int | None) -> dict[str, Any]:
    n = len(log.loss)
    idx = np.unique(np.linspace(0, n - 1, min(n, SERIES_POINTS)).round().astype(int)) if n else []

    def clean(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {
        "epochs_requested": epochs, "steps_limit": steps, "steps_ran": log.steps_ran,
        "steps_per_epoch": log.steps_per_epoch, "stopped_by": log.stopped_by,
        "series": {"step": [int(i) + 1 for i in idx],
                   "loss": [clean(log.loss[i]) for i in idx],
                   "grad_norm": [clean(log.grad_norm[i]) for i in idx]},
        "val_loss": {str(k): clean(v) for k, v in log.val_loss.items()},
    }
