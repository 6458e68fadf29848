"""Watched training as replay and check's burst both run it: train a copy in memory from the
loaded weights, stop at the first non-finite value, localise it, and hand what training showed
to the engine (with the re-training service the checks may use)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nandoc.core.finding import Finding
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.engine import diagnosis
from nandoc.engine.inputs import Inputs
from nandoc.engine.localise import failing_batch as batch_layers
from nandoc.engine.localise import localise
from nandoc.instrument.batches import Batch
from nandoc.loading.dataset import Dataset
from nandoc.watch import loop
from nandoc.watch.state import (
    KeptState,
    apply_overrides,
    copy_optimizer_state,
    restore,
    state_variables,
)
from nandoc.watch.step import StepStats, WatchedStep

# A step whose snapshot could not hold the whole state (a big model on a CPU: "partial", or no
# room: "skipped") leaves a non-finite update in the weights. The last finite state is then
# reached again from the starting state, re-running the steps before the failing one (the same
# batches: they follow from the seed and the epoch), when the run up to the failure took at
# most this long: the re-run takes about as long again.
REWIND_MAX_S = 300.0


@dataclass
class Training:
    """What a watched run showed."""

    log: StepLog
    failure: loop.Failure | None
    initial: KeptState  # the state training started from (a big one in a temporary file)
    first: FirstNonfinite | None = None
    localised: list[Finding] = field(default_factory=list)
    from_pass: bool = False  # the first step was seen in its layer pass: nothing compiled
    layer_pass: Any = None  # the failing batch's layer pass, from the last finite state
    start: tuple[int, int] = (1, 0)  # (epoch, steps skipped in it): where training started
    snapshot: dict[str, Any] | None = None  # the restore snapshot on the host or skipped: why

    def failing_batch(self) -> dict[str, Any] | None:
        """`report.extra["failing_batch"]`, when a value turned non-finite."""
        if self.failure is None:
            return None
        rows = self.first.rows if self.first is not None else ()
        return batch_layers(self.layer_pass, self.failure.epoch, self.failure.step, rows)


def trainable(inputs: Inputs) -> str | None:
    """Why `inputs` cannot be trained as the user trained them, or None."""
    if inputs.model is None or inputs.data is None:
        return "training needs both a model and data"
    if not inputs.loss or getattr(inputs.model, "optimizer", None) is None:
        return "the model was saved without compile settings (no loss or optimizer)"
    return None


def train_watched(inputs: Inputs, *, epochs: int, max_steps: int | None = None,
                  time_limit_s: float | None = None,
                  progress: Callable[[int, int, int, StepStats], None] | None = None,
                  seen_first: bool = False, start_epoch: int = 1, skip_steps: int = 0
                  ) -> Training:
    """Train a watched copy (from `start_epoch`, skipping its first `skip_steps`, when it
    resumes from a checkpoint); with `seen_first`, a first step whose layer pass (one of the
    run's shared measurements) already turned non-finite is taken as observed, without
    compiling a train step: it ran the same batch from the same weights."""
    model, data, train = inputs.model, inputs.data, inputs.config.train
    first_pass = _first_step_pass(inputs) if seen_first and start_epoch == 1 and \
        not skip_steps else None
    if first_pass is not None:
        return _observed_in_the_pass(inputs, first_pass)
    resumed = getattr(model.optimizer, "built", False) and (start_epoch > 1 or skip_steps)
    before = model.optimizer
    if apply_overrides(model, train) and resumed:  # keep the checkpoint's optimizer state
        copy_optimizer_state(before, model.optimizer, model.trainable_variables)
    initial = KeptState(model)
    step = WatchedStep(model)
    began = time.perf_counter()
    run = loop.run(step, data.train, data.val, batch_size=train.batch_size,
                   epochs=epochs, shuffle=train.shuffle, seed=train.seed, max_steps=max_steps,
                   progress=progress, time_limit_s=time_limit_s, start_epoch=start_epoch,
                   skip_steps=skip_steps)
    out = Training(run.log, run.failure, initial, start=(start_epoch, skip_steps),
                   # the report says where the snapshot went only when not on the device
                   snapshot=(step.snapshot_plan.as_extra()
                             if step.snapshot_plan.where != "device" else None))
    if run.failure is not None and out.snapshot is not None and not _finite(model):
        out.snapshot["rewound"] = _rewind(step, out, inputs, time.perf_counter() - began)
    _note_rates(out.log, model.optimizer)
    if run.failure is not None:
        _localise(inputs, out, _failing_batch(data, run.failure), hint=_hint(run.failure))
    return out


def _finite(model: Any) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(v))))
               for v in state_variables(model) if "float" in str(v.dtype))


def _rewind(step: WatchedStep, out: Training, inputs: Inputs, spent_s: float) -> str:
    """Put back the state before the failing step when the step's own snapshot could not (see
    REWIND_MAX_S); what the report says about it."""
    failure, train, data = out.failure, inputs.config.train, inputs.data
    assert failure is not None
    epoch, skipped = out.start
    before = out.log.steps_ran - 1  # the steps this run took before the failing one
    if failure.where != "step":
        return "no: the failure was in validation, which changes no weight"
    if spent_s > REWIND_MAX_S:
        return (f"no: training to the failure took {spent_s:.0f} s (over {REWIND_MAX_S:.0f} s): "
                f"the weights left are those after the non-finite update")
    began = time.perf_counter()
    restore(inputs.model, out.initial)
    if before > 0:
        loop.run(step, data.train, None, batch_size=train.batch_size,
                 epochs=failure.epoch - epoch + 1, shuffle=train.shuffle, seed=train.seed,
                 max_steps=before, start_epoch=epoch, skip_steps=skipped)
    if not _finite(inputs.model):
        return "no: the re-run from the starting state did not stay finite"
    return (f"yes: the {before} step{'s' if before != 1 else ''} before the failing one re-run "
            f"from the starting state in {time.perf_counter() - began:.1f} s, so the failing "
            f"step is localised from its last finite weights")


def _note_rates(log: StepLog, optimizer: Any) -> None:
    """The rate the last step ran at, and the optimizer class's own default."""
    log.default_learning_rate = _default_rate(optimizer)
    if log.steps_ran:
        log.learning_rate[-1] = float(np.asarray(optimizer.learning_rate))


def _localise(inputs: Inputs, out: Training, batch: Batch, hint: str,
              layer_pass: Any = None) -> None:
    """Where the failure of `out` was born, on its batch; the findings that says."""
    failure = out.failure
    loc = localise(inputs.model, inputs.loss, batch, epoch=failure.epoch, step=failure.step,
                   sources=inputs.sources, features=inputs.data.features, inputs=inputs.data.inputs,
                   file=inputs.data.train.file, hint=hint, seed=inputs.config.train.seed,
                   validation=failure.where == "validation",
                   suspects=inputs.optional("suspects", ()), layer_pass=layer_pass,
                   shards=inputs.data.shard_map(inputs.data.val if failure.where == "validation"
                                                else inputs.data.train),
                   # counted from the original run's start, also when resumed (as the callback)
                   extra={"global_step": failure.global_step})
    out.first, out.localised, out.layer_pass = loc.first, loc.findings, loc.layer_pass
    if layer_pass is not None:
        out.log.grad_norm[-1] = loc.grad_norm


def _default_rate(optimizer: Any) -> float | None:
    """The learning rate the optimizer's class defaults to (Adam, RMSprop: 0.001)."""
    import inspect

    try:
        value = inspect.signature(type(optimizer)).parameters["learning_rate"].default
    except (KeyError, TypeError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _first_step_pass(inputs: Inputs) -> Any:
    """The layer pass of epoch 1's first batch, when it is non-finite before any update."""
    train = inputs.config.train
    if train.shuffle or train.optimizer or train.learning_rate or train.clipnorm:
        return None
    passes = inputs.optional("passes", ())
    first = next((p for p in passes if p.batch.name == "first"), None)
    if first is None or first.first_nonfinite is None or \
            first.first_nonfinite.where not in ("data", "forward", "loss", "backward"):
        return None
    return first


def _observed_in_the_pass(inputs: Inputs, lp: Any) -> Training:
    model, data = inputs.model, inputs.data
    log = StepLog(optimizer=type(model.optimizer).__name__)
    log.steps_per_epoch = -(-data.train.n // inputs.config.train.batch_size)
    log.record(1, 1, lp.loss if lp.loss is not None else np.nan)
    log.stopped_by = "nan"
    out = Training(log, loop.Failure(1, 1, 1, "step", lp.batch.indices, "train"),
                   KeptState(model), from_pass=True)
    _note_rates(log, model.optimizer)
    _localise(inputs, out, lp.batch, hint="forward", layer_pass=lp)
    return out


def observe(d: diagnosis.Diagnosis, inputs: Inputs, training: Training) -> None:
    """Hand what training showed to the engine, with the re-training service."""
    diagnosis.observe(d, training.log, training.first, training.localised,
                      rerun=_rerun(inputs.model, training.initial, inputs.data, inputs,
                                   training.start))


def _rerun(model: Any, initial: KeptState, data: Dataset, inputs: Inputs,
           start: tuple[int, int] = (1, 0)) -> Callable[..., StepLog]:
    """The first `steps` again, from the initial weights (and the epoch and step training
    started at), with the learning rate scaled; the model is left as it was."""
    from nandoc.analysis.remedies import optimizer_like

    train = inputs.config.train
    done: dict[tuple[float, int], StepLog] = {}  # checks may ask for the same re-run

    def rerun(learning_rate_factor: float = 1.0, steps: int = 20) -> StepLog:
        key = (float(learning_rate_factor), int(steps))
        if key not in done:
            done[key] = _train_again(learning_rate_factor, steps)
        return done[key]

    def _train_again(learning_rate_factor: float, steps: int) -> StepLog:
        end = KeptState(model)
        restore(model, initial)
        original = model.optimizer
        lr = float(np.asarray(original.learning_rate))
        model.compile(optimizer=optimizer_like(original, learning_rate=lr * learning_rate_factor),
                      loss=model.loss)
        try:
            per_epoch = max(-(-data.train.n // train.batch_size), 1)
            slow = loop.run(WatchedStep(model), data.train, None, batch_size=train.batch_size,
                            epochs=max(1, -(-(steps + start[1]) // per_epoch)),
                            shuffle=train.shuffle, seed=train.seed, max_steps=steps,
                            start_epoch=start[0], skip_steps=start[1])
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
