"""`nandoc replay` as a library call: train a watched copy, stop at the first non-finite value,
localise and explain it, verify the candidate fixes, and return a Report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from nandoc import __version__
from nandoc.config import Config
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.ranking import rank
from nandoc.core.report import Report
from nandoc.errors import ConfigError
from nandoc.pipeline import describe_inputs, load_inputs, run_all_checks
from nandoc.replay import fixes, loop, trends
from nandoc.replay.localise import localise
from nandoc.replay.state import apply_overrides, optimizer_like, restore, snapshot
from nandoc.replay.watch import StepStats, WatchedStep

SERIES_POINTS = 500
MAX_VERIFIED = 4


def replay(cfg: Config, *, epochs: int | None = None, steps: int | None = None,
           verify_fixes: bool = True,
           progress: Callable[[int, int, int, StepStats], None] | None = None) -> Report:
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
    findings, results = run_all_checks(inputs)
    model, data, train = inputs.model, inputs.data, cfg.train
    apply_overrides(model, train)
    initial = snapshot(model)
    watched = WatchedStep(model)
    run_epochs = epochs if epochs is not None else train.epochs
    log = loop.run(watched, data.train, data.val, batch_size=train.batch_size,
                   epochs=run_epochs, shuffle=train.shuffle, seed=train.seed, max_steps=steps,
                   progress=progress)
    trained = time.perf_counter()
    extra: dict[str, Any] = {"replay": _summary(log, run_epochs, steps)}
    if log.error:
        extra["replay"]["error"] = log.error
    new: list[Finding] = []
    failure = log.failure
    if failure is not None:
        loc = localise(model, inputs.loss, data, failure, inputs.sources, seed=train.seed)
        extra["first_nonfinite"] = loc.first_nonfinite
        new += loc.findings
    optimizer_name = type(model.optimizer).__name__
    exploding = trends.exploding_gradients(log, optimizer_name)
    if exploding is not None:
        new.append(exploding)
    lr = _learning_rate_finding(model, initial, data, train, log, optimizer_name)
    if lr is not None:
        new.append(lr)
    merged = _merge(findings, new)
    if failure is not None and verify_fixes:
        objects = {k: v for src in inputs.sources for k, v in src.objects.items()}
        merged = _verify(model, data, train, failure, rank(merged), snapshot(model), initial,
                         objects)
    done = time.perf_counter()
    return Report.build(
        "replay", __version__, merged, checks=tuple(results), inputs=describe_inputs(inputs),
        timings={"train_s": round(trained - started, 3), "total_s": round(done - started, 3)},
        extra=extra)


def _summary(log: loop.ReplayLog, epochs: int, steps: int | None) -> dict[str, Any]:
    n = log.steps_ran
    idx = np.unique(np.linspace(0, n - 1, min(n, SERIES_POINTS)).round().astype(int)) if n else []

    def clean(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {
        "epochs_requested": epochs, "steps_limit": steps, "steps_ran": n,
        "steps_per_epoch": log.steps_per_epoch, "stopped_by": log.stopped_by,
        "series": {"step": [int(i) + 1 for i in idx],
                   "loss": [clean(log.loss[i]) for i in idx],
                   "grad_norm": [clean(log.grad_norm[i]) for i in idx]},
        "val_loss": {str(k): clean(v) for k, v in log.val_loss.items()},
    }


def _merge(findings: list[Finding], new: list[Finding]) -> list[Finding]:
    """Replay evidence joins the check's finding about the same place; new places are added."""
    out = list(findings)
    for f in new:
        same = [i for i, g in enumerate(out) if g.place == f.place]
        if not same:
            out.append(f)
            continue
        i = same[0]
        g = out[i]
        when = (f" Replay: seen at epoch {f.location.epoch}, step {f.location.step}."
                if f.location.epoch is not None else "")
        out[i] = g.with_(
            severity=max(g.severity, f.severity, key=lambda s: s.level),
            confidence=max(g.confidence, f.confidence), basis="measured",
            location=replace(g.location, epoch=f.location.epoch, step=f.location.step,
                             rows=f.location.rows or g.location.rows),
            evidence=g.evidence + when)
    return out


def _learning_rate_finding(model: Any, initial: list[np.ndarray], data, train, log,
                           optimizer_name: str) -> Finding | None:
    """The loss diverges from the first steps: confirm with the same steps at a tenth of the
    rate, from the same initial weights."""
    diverging, evidence = trends.diverges_early(log)
    if not diverging:
        return None
    window = min(20, log.steps_ran)
    end = snapshot(model)
    restore(model, initial)
    lr = float(np.asarray(model.optimizer.learning_rate))
    original = model.optimizer
    model.compile(optimizer=optimizer_like(original, learning_rate=lr / 10), loss=model.loss)
    slow = loop.run(WatchedStep(model), data.train, None, batch_size=train.batch_size,
                    epochs=max(1, -(-window // max(log.steps_per_epoch, 1))),
                    shuffle=train.shuffle, seed=train.seed, max_steps=window)
    model.compile(optimizer=original, loss=model.loss)
    restore(model, end)
    slow_diverges, slow_evidence = trends.diverges_early(slow)
    confirmed = not slow_diverges and slow.stopped_by != "nan"
    return Finding(
        cause="learning-rate-too-high",
        severity=Severity.ERROR if log.failure is not None else Severity.WARNING,
        confidence=0.9 if confirmed else 0.5,
        title=f"the loss diverges from the first steps at learning rate {lr:g}",
        evidence=(f"{evidence}. At {lr / 10:g} (a tenth), from the same initial weights, "
                  + ("the same steps do not diverge" if confirmed else
                     f"it still diverges ({slow_evidence})") + "."),
        location=Location(kind="optimizer", name=optimizer_name),
        fix=(f"Lower the learning rate (to {lr / 10:g} or below), or warm it up over the first "
             f"epoch."),
        measured={"learning_rate": lr, "confirmed_at_tenth": confirmed},
    )


def _verify(model, data, train, failure, ranked: list[Finding], failure_state, initial,
            custom_objects: dict[str, Any]) -> list[Finding]:
    out = list(ranked)
    top = [f for f in ranked if f.severity is not Severity.INFO][:6]
    done: set[str] = set()
    for cand in fixes.candidates(top)[:MAX_VERIFIED + 1]:
        if cand.cause in done:  # an earlier candidate for this cause is already NaN-free
            continue
        try:
            result = fixes.verify(model, failure_state, data, cand, failure=failure,
                                  batch_size=train.batch_size, shuffle=train.shuffle,
                                  seed=train.seed, initial=initial,
                                  custom_objects=custom_objects)
        except Exception as exc:  # a fix that cannot be applied is not verified, not a crash
            result = None
            note = f"could not apply '{cand.change}': {type(exc).__name__}: {exc}"
            out = [f.with_(evidence=f.evidence + f" (Fix not verified: {note}.)")
                   if f.cause == cand.cause else f for f in out]
        if result is None:
            continue
        if result.nan_free:
            done.add(cand.cause)
        for i, f in enumerate(out):
            if f.cause != cand.cause:
                continue
            if f.verified_fix is None or (not f.verified_fix.nan_free and result.nan_free):
                out[i] = f.with_(verified_fix=result)
                if result.nan_free and cand.cause == "learning-rate-too-high":
                    out[i] = out[i].with_(fix=f"Use {cand.change}: verified NaN-free "
                                              f"over {result.steps_ran} steps.")
            break
    restore(model, failure_state)
    return out
