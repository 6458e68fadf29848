"""The watched loop: batches as `fit` makes them, a watched step each, validation each epoch, a
stop at the first non-finite value. Measurements go to the core StepLog, one row per step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nandoc.core.evidence import first_sentence
from nandoc.core.records import StepLog
from nandoc.instrument.batches import epoch_batches
from nandoc.loading.dataset import Split
from nandoc.loading.named import feed
from nandoc.watch.step import StepStats, WatchedStep


@dataclass
class Failure:
    """Where the run stopped. Epochs and steps count from 1, as Keras prints them."""

    epoch: int
    step: int  # within the epoch; 0 for a validation failure
    global_step: int
    where: str  # "step" (loss/gradient/update: to be localised) or "validation"
    indices: np.ndarray  # the batch's sample indices into its split
    split: str  # "train" or "validation"
    stats: StepStats | None = None
    val_loss: float | None = None


@dataclass
class Watched:
    """A watched run: the per-step log, and where it stopped when a value turned non-finite."""

    log: StepLog
    failure: Failure | None = None

    def record(self, epoch: int, step: int, stats: StepStats) -> None:
        self.log.record(epoch, step, stats.loss, stats.grad_norm,
                        tuple(stats.layer_grad_norms.tolist()))


Progress = Callable[[int, int, int, StepStats], None]


def run(watched: WatchedStep, train: Split, val: Split | None, *, batch_size: int, epochs: int,
        shuffle: bool, seed: int, max_steps: int | None = None,
        progress: Progress | None = None, start_epoch: int = 1, skip_steps: int = 0,
        time_limit_s: float | None = None) -> Watched:
    """Train until `epochs` are done, `max_steps` have run, `time_limit_s` has passed (after
    the first step, which pays for tracing), a value turns non-finite, or Ctrl-C.

    `start_epoch` and `skip_steps` resume mid-run (the batches of an epoch are a function of the
    seed and the epoch, so a resumed run sees the same batches as the original). A resumed run's
    `Failure.global_step` counts from the original run's start: the steps before `start_epoch`
    and the `skip_steps` skipped are counted as done."""
    run_ = Watched(StepLog(layers=tuple(watched.layers),
                           optimizer=type(watched.optimizer).__name__))
    log = run_.log
    log.steps_per_epoch = -(-train.n // batch_size)
    total = 0
    offset = (start_epoch - 1) * log.steps_per_epoch + min(skip_steps, log.steps_per_epoch)
    deadline = float("inf")
    try:
        for epoch in range(start_epoch, start_epoch + epochs):
            for step, idx in enumerate(epoch_batches(train.n, batch_size, shuffle, seed, epoch),
                                       start=1):
                if epoch == start_epoch and step <= skip_steps:
                    continue
                try:
                    stats = watched.train(feed(train.x[idx]), feed(train.y[idx]))
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # the user's step cannot run: fit fails the same way
                    log.error = f"{type(exc).__name__}: {first_sentence(str(exc))}"
                    log.stopped_by = "error"
                    return run_
                total += 1
                run_.record(epoch, step, stats)
                if progress is not None:
                    progress(epoch, step, log.steps_per_epoch, stats)
                if not stats.ok:
                    run_.failure = Failure(epoch, step, offset + total, "step", idx, "train",
                                           stats)
                    log.stopped_by = "nan"
                    return run_
                if total == 1 and time_limit_s is not None:
                    deadline = time.perf_counter() + time_limit_s
                if max_steps is not None and total >= max_steps:
                    log.stopped_by = "steps"
                    return run_
                if time_limit_s is not None and time.perf_counter() > deadline:
                    log.stopped_by = "time"
                    return run_
            if val is not None and val.n:
                failure = _validate(watched, val, batch_size, epoch, offset + total, log)
                if failure is not None:
                    run_.failure = failure
                    log.stopped_by = "nan"
                    return run_
    except KeyboardInterrupt:
        log.stopped_by = "interrupted"
    return run_


def _validate(watched: WatchedStep, val: Split, batch_size: int, epoch: int, total: int,
              log: StepLog) -> Failure | None:
    weighted, count = 0.0, 0
    for idx in epoch_batches(val.n, batch_size, False, 0, 0):
        loss = watched.validate(feed(val.x[idx]), feed(val.y[idx]))
        if not np.isfinite(loss):
            log.val_loss[epoch] = loss
            return Failure(epoch, 0, total, "validation", idx, "validation", val_loss=loss)
        weighted += loss * len(idx)
        count += len(idx)
    log.val_loss[epoch] = weighted / max(count, 1)
    return None
