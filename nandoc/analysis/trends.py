"""Measurements over the per-step log (nandoc.core.records.StepLog) that the training-time
checks judge: how far the gradient norm grew, whether the loss diverges from the first steps,
and what the failing step measured when the update itself broke the weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nandoc.core.causes import CAUSES
from nandoc.core.evidence import num, sparkline
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.records import FirstNonfinite, StepLog

# Within this many steps of the start, an update that breaks finite weights is the learning
# rate's doing; later, the gradients have grown into it.
EARLY_STEPS = 20
DIVERGENCE_WINDOW = 20
JUMP = 100.0  # two orders of magnitude


@dataclass(frozen=True)
class Growth:
    head: float  # median gradient norm over the first steps
    peak: float
    peak_index: int  # into the log

    @property
    def factor(self) -> float:
        return self.peak / self.head


def gradient_growth(log: StepLog) -> Growth | None:
    """The peak global gradient norm against the first steps' median; None without enough
    measured steps."""
    g = np.asarray(log.grad_norm, dtype=np.float64)
    finite = g[np.isfinite(g)]
    if finite.size < 3:
        return None
    head = float(np.median(finite[: max(1, min(10, finite.size // 4))]))
    peak_i = int(np.nanargmax(np.where(np.isfinite(g), g, -np.inf)))
    if head <= 0:
        return None
    return Growth(head, float(g[peak_i]), peak_i)


def diverges_early(log: StepLog, window: int = DIVERGENCE_WINDOW) -> tuple[bool, str]:
    """The loss grows over the first steps: most steps up, and at least doubled."""
    loss = np.asarray(log.loss[:window], dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    if loss.size < 4:
        return False, ""
    ups = float(np.mean(np.diff(loss) > 0))
    grew = loss[-1] / max(abs(loss[0]), 1e-12)
    # Rising most of the way, or a jump by orders of magnitude that the loss stays at.
    stays = float(np.median(loss[-max(1, loss.size // 4):])) / max(abs(loss[0]), 1e-12)
    ok = bool((ups >= 0.6 and grew >= 2.0) or (grew >= JUMP and stays >= JUMP))
    return ok, (f"the loss rose from {num(float(loss[0]))} to {num(float(loss[-1]))} over the "
                f"first {loss.size} steps ({ups:.0%} of steps up): {sparkline(loss, log=False)}")


@dataclass(frozen=True)
class SlowerRun:
    """The first steps again at a lower learning rate, from the same initial weights."""

    factor: float  # of the configured rate
    steps: int
    finite: bool  # no non-finite value
    diverges: bool
    evidence: str

    @property
    def trains(self) -> bool:
        return self.finite and not self.diverges


def at_lower_rates(log: StepLog, rerun, factors: tuple[float, ...] = (0.1, 0.01)
                   ) -> SlowerRun | None:
    """Re-run the first steps (twice as many as it took to fail, within the divergence
    window) at a tenth of the rate, then a hundredth; the first run that trains, or the last
    one tried. None when the driver offers no re-run."""
    if rerun is None or not log.steps_ran:
        return None
    steps = min(DIVERGENCE_WINDOW, max(2 * log.steps_ran, 5))
    lr, default = last_finite(log.learning_rate), log.default_learning_rate
    if lr and default and default < lr * min(factors):
        factors = (*factors, default / lr)  # a typo'd rate: the optimizer's own default
    out = None
    for factor in factors:
        slow = rerun(learning_rate_factor=factor, steps=steps)
        diverges, evidence = diverges_early(slow)
        out = SlowerRun(factor, slow.steps_ran, not slow.nonfinite, diverges, evidence)
        if out.trains:
            break
    return out


def early_nonfinite(log: StepLog, first: FirstNonfinite | None = None) -> bool:
    """Training turned non-finite within the first steps, after at least one update: a value
    born in the first step's forward or backward pass comes from the saved weights and the
    data, whatever the learning rate."""
    if not (log.nonfinite and log.steps_ran <= EARLY_STEPS):
        return False
    return log.steps_ran >= 2 or (first is not None and first.where == "update")


def last_finite(values: list[float]) -> float | None:
    for v in reversed(values):
        if math.isfinite(v):
            return float(v)
    return None


@dataclass(frozen=True)
class UpdateBlowup:
    """The failing batch runs finite forward and backward from the last finite weights, yet
    the update made the weights non-finite: the step was too large."""

    early: bool  # within EARLY_STEPS of the start
    loss: float | None  # the failing batch's loss from the last finite weights
    grad_norm: float | None
    learning_rate: float | None
    since: str  # which weights the batch was re-run from


def update_blowup(log: StepLog, first: FirstNonfinite | None) -> UpdateBlowup | None:
    if first is None or first.where != "update" or not log.steps_ran:
        return None
    kept = first.extra.get("restored_from") or {}
    since = (f"the last finite weights (epoch {kept.get('epoch')}, step {kept.get('step')})"
             if kept else "the weights the model holds")
    loss, grad, lr = log.loss[-1], log.grad_norm[-1], log.learning_rate[-1]
    return UpdateBlowup(log.steps_ran <= EARLY_STEPS,
                        loss if math.isfinite(loss) else None,
                        grad if math.isfinite(grad) else None,
                        lr if math.isfinite(lr) else None, since)


def update_blowup_finding(cause: str, confidence: float, log: StepLog,
                          first: FirstNonfinite, b: UpdateBlowup) -> Finding:
    """The finding for an update that broke the weights, under the cause a check judged."""
    return Finding(
        cause=cause, severity=Severity.ERROR, confidence=confidence,
        title=f"the update at epoch {first.epoch}, step {first.step} made the weights non-finite",
        evidence=_update_evidence(b),
        location=Location(kind="optimizer", name=log.optimizer, epoch=first.epoch,
                          step=first.step),
        fix=f"{CAUSES[cause].fix}\n    {CAUSES[cause].example}",
        measured={"grad_norm": b.grad_norm, "learning_rate": b.learning_rate,
                  "global_step": log.steps_ran})


def _update_evidence(b: UpdateBlowup) -> str:
    loss = f"a finite loss ({b.loss:.4g})" if b.loss is not None else "a finite loss"
    numbers = ", ".join(p for p in (
        f"global gradient norm {b.grad_norm:.3g}" if b.grad_norm is not None else "",
        f"learning rate {b.learning_rate:.3g}" if b.learning_rate is not None else "") if p)
    return (f"From {b.since}, the failing batch gives {loss} and finite gradients"
            f"{' (' + numbers + ')' if numbers else ''}, yet after the optimizer's update the "
            f"weights were non-finite: the step was too large"
            + (" from the first steps of training" if b.early else "") + ".")
