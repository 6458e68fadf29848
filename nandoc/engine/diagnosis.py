"""The one diagnosis path. Every driver (check, replay, `diagnose()`, the callback) gathers its
inputs its own way, then:

    d = examine(inputs)                       # every check that needs no training
    observe(d, steplog, first_nonfinite, ...)  # drivers that trained: what training showed
    report = build_report(d, command, ...)     # ranked findings, check outcomes, verdict data

Training-time checks (those that need the `steplog` or the `first_nonfinite`) run in `observe`;
a run that never trained lists them as not applicable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from nandoc.core.finding import Finding
from nandoc.core.ranking import reconcile
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.core.registry import CheckSpec, all_checks
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.engine.confirm import confirm, confirm_error
from nandoc.engine.inputs import Inputs
from nandoc.engine.runner import run_checks
from nandoc.engine.scope import not_checked
from nandoc.quiet import keras_call_warnings

TRAINING_NEEDS = frozenset({"steplog", "first_nonfinite"})


def _training(spec: CheckSpec) -> bool:
    return bool(TRAINING_NEEDS & set(spec.needs))


@dataclass
class Diagnosis:
    inputs: Inputs
    findings: list[Finding] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)
    broken: list[CheckResult] = field(default_factory=list)  # modules that failed to import
    observed: bool = False
    started: float = field(default_factory=time.perf_counter)


def examine(inputs: Inputs, started: float | None = None) -> Diagnosis:
    """Run every check that needs no training on `inputs`."""
    from nandoc.checks import load_all

    d = Diagnosis(inputs, started=started if started is not None else time.perf_counter())
    d.broken = [CheckResult(module.rsplit(".", 1)[-1], Outcome.FAILED, message=error)
                for module, error in sorted(load_all().items())]
    with keras_call_warnings():
        d.findings, d.results = run_checks(inputs,
                                           [s for s in all_checks() if not _training(s)])
    return d


def observe(d: Diagnosis, steplog: StepLog, first_nonfinite: FirstNonfinite | None = None,
            localised: Iterable[Finding] = (), rerun: Callable[..., StepLog] | None = None
            ) -> None:
    """What training showed: the per-step log, the first non-finite value and the findings
    its localisation measured. Runs the training-time checks on them."""
    d.inputs.steplog, d.inputs.first_nonfinite, d.inputs.rerun = steplog, first_nonfinite, rerun
    # Static suspects already confirmed or cleared by a measurement give way to it first.
    d.findings = merge(reconcile(d.findings), list(localised))
    with keras_call_warnings():
        found, results = run_checks(d.inputs, [s for s in all_checks() if _training(s)])
    d.findings = confirm_error(confirm(d.findings + found, first_nonfinite), steplog.error)
    d.results += results
    d.observed = True


def merge(findings: list[Finding], new: list[Finding]) -> list[Finding]:
    """Evidence seen in training joins the finding about the same place; new places are
    added."""
    out = list(findings)
    for f in new:
        same = sorted((i for i, g in enumerate(out) if g.place == f.place),
                      key=lambda i: out[i].basis != "measured")
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


def build_report(d: Diagnosis, command: str, *, extra: dict[str, Any] | None = None,
                 timings: dict[str, float] | None = None,
                 inputs: dict[str, Any] | None = None, step_error: str | None = None
                 ) -> Report:
    """The ranked Report. `inputs` overrides the description of what was examined."""
    from nandoc._version import __version__

    if not d.observed:  # listed, as not applicable: nothing was trained
        _, results = run_checks(d.inputs, [s for s in all_checks() if _training(s)])
        d.results += results
    if timings is None:
        timings = {"total_s": round(time.perf_counter() - d.started, 3)}
    results = sorted(d.results, key=lambda r: r.check) + d.broken
    return Report.build(command, __version__, d.findings, checks=tuple(results),
                        inputs=inputs if inputs is not None else describe_inputs(d.inputs),
                        timings=timings, extra=dict(extra or {}),
                        first_nonfinite=d.inputs.first_nonfinite, step_error=step_error,
                        not_checked=not_checked(d.inputs, command))


def describe_inputs(inputs: Inputs) -> dict[str, Any]:
    cfg = inputs.config
    out: dict[str, Any] = {}
    if cfg.model_path is not None:
        out["model"] = str(cfg.model_path)
    if inputs.loss:
        out["loss"] = [li.name for li in inputs.loss]
    if cfg.data_path is not None:
        out["data"] = str(cfg.data_path)
    d = inputs.data
    if d is not None:
        out.update({
            "features": list(d.features), "targets": list(d.targets),
            "train_samples": d.train.total,
            "validation_samples": d.val.total if d.val else None,
        })
        if d.sampled:  # a large file: the model passes read a bounded sample of its rows
            out["sampled_samples"] = {"train": d.train.n,
                                      "validation": d.val.n if d.val else None}
        if d.window:
            out["window"] = d.window
        if d.ignored_columns:
            out["ignored_columns"] = list(d.ignored_columns)
        if d.shards is not None:  # a glob or a folder of shards
            out["shards"] = len(d.shards)
        if d.unused_columns:  # every column of the file is used, or listed here with why
            out["unused_columns"] = [{"column": c, "why": why} for c, why in d.unused_columns]
        if d.notes:  # how the file was read: its encoding, compression, number spelling
            out["data_notes"] = list(d.notes)
    return out
