"""The replay loop: batches as `fit` makes them, a watched step each, validation each epoch, a
stop at the first non-finite value. Measurements go to a plain log keyed by step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nandoc.core.evidence import first_sentence
from nandoc.loading.dataset import Split
from nandoc.replay.watch import StepStats, WatchedStep


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
class ReplayLog:
    layers: list[str]
    epoch: list[int] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    layer_grad_norms: list[np.ndarray] = field(default_factory=list)
    val_loss: dict[int, float] = field(default_factory=dict)
    failure: Failure | None = None
    stopped_by: str = "done"  # done | nan | steps | interrupted | error
    error: str | None = None  # what the train step raised, as fit would have
    steps_per_epoch: int = 0

    @property
    def steps_ran(self) -> int:
        return len(self.loss)

    def record(self, epoch: int, step: int, stats: StepStats) -> None:
        self.epoch.append(epoch)
        self.step.append(step)
        self.loss.append(stats.loss)
        self.grad_norm.append(stats.grad_norm)
        self.layer_grad_norms.append(stats.layer_grad_norms)


def epoch_batches(n: int, batch_size: int, shuffle: bool, seed: int, epoch: int
                  ) -> list[np.ndarray]:
    order = (np.random.default_rng([seed, epoch]).permutation(n) if shuffle
             else np.arange(n))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


Progress = Callable[[int, int, int, StepStats], None]


def run(watched: WatchedStep, train: Split, val: Split | None, *, batch_size: int, epochs: int,
        shuffle: bool, seed: int, max_steps: int | None = None,
        progress: Progress | None = None, start_epoch: int = 1, skip_steps: int = 0
        ) -> ReplayLog:
    """Train until `epochs` are done, `max_steps` have run, a value turns non-finite, or Ctrl-C.

    `start_epoch` and `skip_steps` resume mid-run (the batches of an epoch are a function of the
    seed and the epoch, so a resumed run sees the same batches as the original)."""
    log = ReplayLog(layers=list(watched.layers))
    log.steps_per_epoch = -(-train.n // batch_size)
    total = 0
    try:
        for epoch in range(start_epoch, start_epoch + epochs):
            for step, idx in enumerate(epoch_batches(train.n, batch_size, shuffle, seed, epoch),
                                       start=1):
                if epoch == start_epoch and step <= skip_steps:
                    continue
                try:
                    stats = watched.train(train.x[idx], train.y[idx])
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # the user's step cannot run: fit fails the same way
                    log.error = f"{type(exc).__name__}: {first_sentence(str(exc))}"
                    log.stopped_by = "error"
                    return log
                total += 1
                log.record(epoch, step, stats)
                if progress is not None:
                    progress(epoch, step, log.steps_per_epoch, stats)
                if not stats.ok:
                    log.failure = Failure(epoch, step, total, "step", idx, "train", stats)
                    log.stopped_by = "nan"
                    return log
                if max_steps is not None and total >= max_steps:
                    log.stopped_by = "steps"
                    return log
            if val is not None and val.n:
                failure = _validate(watched, val, batch_size, epoch, total, log)
                if failure is not None:
                    log.failure = failure
                    log.stopped_by = "nan"
                    return log
    except KeyboardInterrupt:
        log.stopped_by = "interrupted"
    return log


def _validate(watched: WatchedStep, val: Split, batch_size: int, epoch: int, total: int,
              log: ReplayLog) -> Failure | None:
    weighted, count = 0.0, 0
    for idx in epoch_batches(val.n, batch_size, False, 0, 0):
        loss = watched.validate(val.x[idx], val.y[idx])
        if not np.isfinite(loss):
            log.val_loss[epoch] = loss
            return Failure(epoch, 0, total, "validation", idx, "validation", val_loss=loss)
        weighted += loss * len(idx)
        count += len(idx)
    log.val_loss[epoch] = weighted / max(count, 1)
    return None
