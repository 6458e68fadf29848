"""Gradient norms that grow by orders of magnitude over the steps, or an update that breaks the
weights after the first steps. Reads the per-step log that training filled in."""

from __future__ import annotations

from nandoc.analysis import remedies
from nandoc.analysis.trends import gradient_growth, update_blowup, update_blowup_finding
from nandoc.core.evidence import num, sparkline
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.core.registry import check

CAUSE = "exploding-gradients"
GROWTH = 1e3  # three orders of magnitude


def fixes(finding: Finding) -> list[Candidate]:
    return [Candidate(CAUSE, "clipnorm=1.0 on the optimizer", remedies.clipnorm(1.0),
                      from_start=True)]


@check(id="train-exploding-gradients", needs=("steplog",), wants=("first_nonfinite",),
       causes=(CAUSE,), fixes=fixes)
def exploding_gradients(steplog: StepLog, first_nonfinite: FirstNonfinite | None):
    """Gradient norms that grow by orders of magnitude before the NaN."""
    growth = gradient_growth(steplog)
    if growth is not None and growth.factor >= GROWTH:
        yield _growth_finding(steplog, growth)
        return
    blowup = update_blowup(steplog, first_nonfinite)
    if blowup is not None and not blowup.early:
        yield update_blowup_finding(CAUSE, 0.5, steplog, first_nonfinite, blowup)


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
