"""Gradient norms that grow by orders of magnitude over the steps, or an update that breaks the
weights after the first steps. Reads the per-step log that training filled in."""

from __future__ import annotations

import math
from collections.abc import Callable

from nandoc.analysis import remedies
from nandoc.analysis.trends import (
    at_lower_rates,
    early_nonfinite,
    gradient_growth,
    update_blowup,
    update_blowup_finding,
)
from nandoc.core.evidence import num, sparkline
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.core.registry import check

CAUSE = "exploding-gradients"
GROWTH = 1e3  # three orders of magnitude
# A global gradient norm this large at the first step has nowhere to grow from: the weights or
# the targets' scale make every update a blow-up, whatever the rate.
HUGE = 1e6


def fixes(finding: Finding) -> list[Candidate]:
    return [Candidate(CAUSE, "clipnorm=1.0 on the optimizer", remedies.clipnorm(1.0),
                      from_start=True)]


@check(id="train-exploding-gradients", needs=("steplog",),
       wants=("first_nonfinite", "rerun"), causes=(CAUSE,), fixes=fixes)
def exploding_gradients(steplog: StepLog, first_nonfinite: FirstNonfinite | None,
                        rerun: Callable[..., StepLog] | None):
    """Gradient norms that grow by orders of magnitude before the NaN."""
    growth = gradient_growth(steplog)
    if growth is not None and growth.factor >= GROWTH:
        yield _growth_finding(steplog, growth)
        return
    start = next((g for g in steplog.grad_norm if math.isfinite(g)), None)
    if early_nonfinite(steplog, first_nonfinite) and start is not None and start >= HUGE:
        slow = at_lower_rates(steplog, rerun, factors=(0.1,))
        if slow is None or not slow.trains:
            yield _from_the_start(steplog, start, slow)
            return
    blowup = update_blowup(steplog, first_nonfinite)
    if blowup is not None and not blowup.early:
        yield update_blowup_finding(CAUSE, 0.5, steplog, first_nonfinite, blowup)


def _from_the_start(log: StepLog, start: float, slow) -> Finding:
    tenth = (" At a tenth of the learning rate the same steps still "
             + ("turn non-finite" if not slow.finite else "diverge") + ": the gradients, not the "
             "rate, are the problem." if slow is not None else "")
    return Finding(
        cause=CAUSE, severity=Severity.ERROR, confidence=0.8,
        title=f"the gradients are explosive from the first step (norm {num(start)})",
        evidence=(f"The global gradient norm is {num(start)} at the first step and training "
                  f"turns non-finite at step {log.steps_ran} (loss "
                  f"{' → '.join(num(v) for v in log.loss[:6])}).{tenth} Weights initialised too "
                  f"large, or targets on a scale of thousands or more, give such gradients."),
        location=Location(kind="optimizer", name=log.optimizer, epoch=log.epoch[0],
                          step=log.step[0]),
        fix="Clip gradients (clipnorm=1.0), use the default (Glorot) initialisation, and scale "
            "regression targets to about unit size.",
        measured={"first_grad_norm": start, "steps": log.steps_ran},
    )


def _growth_finding(log: StepLog, growth) -> Finding:
    nan = log.nonfinite
    i = growth.peak_index
    last = len(log.epoch) - 1
    return Finding(
        cause=CAUSE,
        severity=Severity.ERROR if nan else Severity.WARNING,
        confidence=0.85 if nan else 0.6,
        title=f"gradient norm grew ×{num(growth.factor)} before "
              + ("the NaN" if nan else "the end of the run"),
        evidence=(f"global gradient norm {num(growth.head)} over the first steps, "
                  f"{num(growth.peak)} at epoch {log.epoch[i]} step {log.step[i]}"
                  + (f", then non-finite at epoch {log.epoch[last]} step {log.step[last]}"
                     if nan else "")
                  + f". log-scale trace: {sparkline(log.grad_norm)}"),
        location=Location(kind="optimizer", name=log.optimizer, epoch=log.epoch[i],
                          step=log.step[i]),
        fix="Clip gradients (clipnorm=1.0 on the optimizer) and lower the learning rate; look "
            "upstream for the op that grows without bound.",
        measured={"head": growth.head, "peak": growth.peak, "growth": growth.factor,
                  "peak_step": i + 1},
    )
