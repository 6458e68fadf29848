"""A loss that diverges from the first steps, confirmed by re-running them at a tenth of the
rate; or an update that breaks the weights within the first steps."""

from __future__ import annotations

from collections.abc import Callable

from nandoc.analysis import remedies
from nandoc.analysis.trends import (
    SlowerRun,
    at_lower_rates,
    diverges_early,
    early_nonfinite,
    last_finite,
    update_blowup,
    update_blowup_finding,
)
from nandoc.core.causes import CAUSES
from nandoc.core.evidence import num
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.core.registry import check

CAUSE = "learning-rate-too-high"


def fixes(finding: Finding) -> list[Candidate]:
    """1/10, then 1/100 of the rate: the first one verified NaN-free is the advice."""
    lr = float(finding.measured.get("learning_rate") or 0.0) or None
    out = []
    for factor in (10, 100):
        change = (f"learning rate {lr / factor:g} (1/{factor})" if lr else
                  f"1/{factor} of the learning rate")
        out.append(Candidate(CAUSE, change, remedies.scale_learning_rate(1.0 / factor),
                             from_start=True,
                             advice=f"Use {change}: verified NaN-free over {{steps}} steps."))
    return out


@check(id="train-learning-rate-too-high", needs=("steplog",),
       wants=("first_nonfinite", "rerun"), causes=(CAUSE,), fixes=fixes)
def learning_rate_too_high(steplog: StepLog, first_nonfinite: FirstNonfinite | None,
                           rerun: Callable[..., StepLog] | None):
    """The loss diverges from the first steps at the configured learning rate."""
    diverging, evidence = diverges_early(steplog)
    lr = last_finite(steplog.learning_rate)
    early = early_nonfinite(steplog, first_nonfinite)
    if diverging or early:
        slow = at_lower_rates(steplog, rerun) if lr is not None else None
        confirmed = slow is not None and slow.trains
        if diverging or confirmed:
            yield _finding(steplog, evidence if diverging else _blowup(steplog), lr, slow,
                           confirmed)
            return
    blowup = update_blowup(steplog, first_nonfinite)
    if blowup is not None and blowup.early:
        yield update_blowup_finding(CAUSE, 0.6, steplog, first_nonfinite, blowup)


def _blowup(log: StepLog) -> str:
    return (f"training turned non-finite at step {log.steps_ran}, the loss going "
            f"{' → '.join(num(v) for v in log.loss[:6])}")


def _finding(log: StepLog, evidence: str, lr: float | None, slow: SlowerRun | None,
             confirmed: bool) -> Finding:
    if slow is not None:
        evidence += (f". At {lr * slow.factor:g} (1/{1 / slow.factor:g} of it), from the same "
                     f"initial weights, the first {slow.steps} steps "
                     + ("stay finite and do not diverge" if confirmed else
                        "still turn non-finite" if not slow.finite else
                        f"still diverge ({slow.evidence})"))
    shown = f"{lr:g}" if lr is not None else "the configured rate"
    return Finding(
        cause=CAUSE,
        severity=Severity.ERROR if log.nonfinite else Severity.WARNING,
        confidence=0.9 if confirmed else 0.5,
        title=f"the loss diverges from the first steps at learning rate {shown}",
        evidence=evidence + ".",
        location=Location(kind="optimizer", name=log.optimizer),
        fix=(f"Lower the learning rate (to {lr * (slow.factor if confirmed else 0.1):g} or "
             f"below), or warm it up over the first epoch." if lr is not None
             else CAUSES[CAUSE].fix),
        measured={"learning_rate": lr, "confirmed_at_tenth": confirmed and slow.factor == 0.1,
                  "confirmed_at": lr * slow.factor if confirmed else None},
    )
