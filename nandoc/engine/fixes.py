"""Verified fixes, for any cause: each check declares candidate fixes for its findings
(`@check(..., fixes=...)`); here a candidate is applied to a clone of the model restored to the
last finite state (or, for training-dynamics fixes, to the first step), the failing step and
the next epoch are re-run, and the finding records whether it stayed NaN-free."""

from __future__ import annotations

from typing import Any

from nandoc.core.finding import Finding, Severity, VerifiedFix
from nandoc.core.fixes import Candidate, Trial
from nandoc.core.registry import checks_emitting
from nandoc.loading.dataset import Dataset
from nandoc.watch import loop
from nandoc.watch.state import copy_optimizer_state, restore
from nandoc.watch.step import WatchedStep

MAX_VERIFIED = 4
TOP = 6  # findings whose fixes are tried, best-ranked first


def candidates(findings: list[Finding]) -> list[Candidate]:
    """The candidate fixes of the checks that can emit each finding's cause, in rank order,
    for the first finding of each cause."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for f in findings:
        if f.cause in seen:
            continue
        seen.add(f.cause)
        for spec in checks_emitting(f.cause):
            if spec.fixes is not None:
                out += [c for c in spec.fixes(f) if c.change not in {o.change for o in out}]
    return out


def verify_all(model: Any, ranked: list[Finding], *, failure: loop.Failure, data: Dataset,
               batch_size: int, shuffle: bool, seed: int, initial: Any,
               custom_objects: dict[str, Any], start: tuple[int, int] = (1, 0)
               ) -> list[Finding]:
    """Try the top findings' candidate fixes; return the findings with their verified fix.
    `initial`: the state training started from (a list of arrays or a KeptState), at epoch
    `start[0]` after skipping `start[1]` of its steps (a replay resumed from a checkpoint)."""
    from nandoc.watch.state import KeptState

    failure_state = KeptState(model)
    out = list(ranked)
    top = [f for f in ranked if f.severity is not Severity.INFO][:TOP]
    done: set[str] = set()
    for cand in candidates(top)[:MAX_VERIFIED + 1]:
        if cand.cause in done:  # an earlier candidate for this cause is already NaN-free
            continue
        try:
            result = verify(model, failure_state, data, cand, failure=failure,
                            batch_size=batch_size, shuffle=shuffle, seed=seed, initial=initial,
                            custom_objects=custom_objects, start=start)
        except Exception as exc:  # a fix that cannot be applied is not verified, not a crash
            note = f"could not apply '{cand.change}': {type(exc).__name__}: {exc}"
            out = [f.with_(evidence=f.evidence + f" (Fix not verified: {note}.)")
                   if f.cause == cand.cause else f for f in out]
            continue
        if result.nan_free:
            done.add(cand.cause)
        for i, f in enumerate(out):
            if f.cause != cand.cause:
                continue
            if f.verified_fix is None or (not f.verified_fix.nan_free and result.nan_free):
                out[i] = f.with_(verified_fix=result)
                if result.nan_free and cand.advice:
                    out[i] = out[i].with_(fix=cand.advice.format(steps=result.steps_ran))
            break
    for i, f in enumerate(out):
        v = f.verified_fix
        if v is not None and not v.nan_free and not f.confirmed and f.cause not in done and \
                f.severity is Severity.ERROR:
            # Contradicted by the observation: a real problem, not what makes this NaN.
            out[i] = f.with_(severity=Severity.WARNING,
                             evidence=f"{f.evidence} With its fix ({v.change}) the same steps "
                                      f"still turn non-finite: it is not what makes this NaN.")
    restore(model, failure_state)
    return out


def verify(model: Any, state: Any, data: Dataset, candidate: Candidate, *,
           failure: loop.Failure, batch_size: int, shuffle: bool, seed: int,
           initial: Any = None, custom_objects: dict[str, Any] | None = None,
           extra_epochs: int = 1, start: tuple[int, int] = (1, 0)) -> VerifiedFix:
    """Clone the model at the last finite state (or, for training-dynamics fixes, at the state
    training started from: epoch `start[0]`, `start[1]` steps in), apply the change, and
    re-run through the failing step and the next epoch."""
    import keras

    from nandoc.analysis.remedies import optimizer_like

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
        first, skip = start
        epochs = failure.epoch - first + 1 + extra_epochs
    else:  # from the failing step on; a validation failure re-runs that validation first
        first, epochs = failure.epoch, 1 + extra_epochs
        skip = failure.step - 1 if failure.where == "step" else 10**9
    run = loop.run(watched, trial.data.train, trial.data.val, batch_size=batch_size,
                   epochs=epochs, shuffle=shuffle, seed=seed, start_epoch=first,
                   skip_steps=skip)
    if run.log.stopped_by == "error":
        raise RuntimeError(run.log.error or "the re-run step failed")
    return VerifiedFix(candidate.change, run.log.steps_ran,
                       run.log.steps_ran > 0 and run.log.stopped_by in ("done", "steps"))
