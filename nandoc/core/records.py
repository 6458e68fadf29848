"""What training showed, as plain records: the per-step log and the first non-finite value.

Replay, check's training burst and the NanDoctor callback all fill these in the same form; the
training-time checks read the log, the engine reads the first non-finite value, and renderers
read both without re-running anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WHERE = ("data", "forward", "loss", "backward", "update", "validation")


@dataclass(frozen=True)
class FirstNonfinite:
    """Where the first non-finite value was seen. Epochs and steps count from 1, as Keras
    prints them (step 0: a validation pass); rows count from 1 in file order."""

    where: str | None  # one of WHERE; None when the driver could not tell
    epoch: int | None = None
    step: int | None = None
    layer: str | None = None
    op: str | None = None
    file: str | None = None
    line: int | None = None
    rows: tuple[int, ...] = ()
    detail: str | None = None  # one sentence on what was seen there
    # Facts only one driver has (the callback: the logged loss, the weights it restored).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "where": self.where,
                               "layer": self.layer, "op": self.op}
        if self.file is not None:
            out["file"], out["line"] = self.file, self.line
        out["rows"] = list(self.rows)
        if self.detail is not None:
            out["detail"] = self.detail
        out.update(self.extra)
        return out


@dataclass
class StepLog:
    """One row per training step, in order: what every training-time check reads.

    A value that was not measured is NaN (the callback sees the loss, not the gradients).
    The step that failed is recorded too, as the last row, when `stopped_by` is "nan".
    """

    layers: tuple[str, ...] = ()
    epoch: list[int] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    layer_grad_norms: list[tuple[float, ...]] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    val_loss: dict[int, float] = field(default_factory=dict)
    steps_per_epoch: int = 0
    stopped_by: str = "done"  # done | nan | steps | time | interrupted | error
    error: str | None = None  # what the train step raised, as fit would have
    optimizer: str | None = None  # the optimizer's class name
    default_learning_rate: float | None = None  # the optimizer class's own default rate
    steps_ran: int = 0  # every step recorded, also those a long run's log let go (`trim`)
    trimmed_head: int = 0  # the rows `trim` kept at the start, once it let rows go

    @property
    def nonfinite(self) -> bool:
        """Training stopped at a non-finite value."""
        return self.stopped_by == "nan"

    def record(self, epoch: int, step: int, loss: float, grad_norm: float = math.nan,
               layer_grad_norms: tuple[float, ...] = (), learning_rate: float = math.nan
               ) -> None:
        self.steps_ran += 1
        self.epoch.append(int(epoch))
        self.step.append(int(step))
        self.loss.append(float(loss))
        self.grad_norm.append(float(grad_norm))
        self.layer_grad_norms.append(tuple(float(v) for v in layer_grad_norms))
        self.learning_rate.append(float(learning_rate))

    def trim(self, head: int, tail: int) -> None:
        """Keep the first `head` and the last `tail` rows: a long run's log stays bounded and
        still holds its start (divergence) and the steps before the failure (growth)."""
        if len(self.loss) <= head + tail:
            return
        self.trimmed_head = head
        for series in (self.epoch, self.step, self.loss, self.grad_norm, self.layer_grad_norms,
                       self.learning_rate):
            del series[head:len(series) - tail]
