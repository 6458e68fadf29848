"""`nandoc replay`, the driver: train a watched copy from the saved model and the configured
data, stop at the first non-finite value, localise it, hand what training showed to the
engine, verify the candidate fixes, and return the Report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.atomic import OutputPathError
from nandoc.config import Config
from nandoc.core.ranking import rank
from nandoc.core.records import StepLog
from nandoc.core.report import Report
from nandoc.drivers.files import load_inputs
from nandoc.drivers.training import observe, train_watched, trainable
from nandoc.engine import diagnosis, fixes
from nandoc.errors import ConfigError
from nandoc.watch.step import StepStats
from nandoc.watch.tensorboard import activation_histograms, check_folder, write_events

SERIES_POINTS = 500


def replay(cfg: Config, *, epochs: int | None = None, steps: int | None = None,
           verify_fixes: bool = True,
           progress: Callable[[int, int, int, StepStats], None] | None = None,
           tensorboard: Path | None = None) -> Report:
    """`tensorboard`: a folder (created if missing) for the run's TensorBoard events, written
    at the end from the step log."""
    started = time.perf_counter()
    if tensorboard is not None:  # before any work, as the CLI does
        check_folder("--tensorboard", tensorboard, {
            "the model file": cfg.model_path, "the training data file": cfg.data_path,
            "the validation data file": cfg.validation_path, "the config file": cfg.source})
    # Replay trains on every row, as fit would: no sampling of big files here.
    inputs = load_inputs(cfg, sample=False)
    if inputs.model is None or inputs.data is None:
        raise ConfigError("replay trains the model on the data: give both, as arguments or in "
                          "nandoc.toml ([model] path and [data] path).")
    if trainable(inputs) is not None:
        what = ("without compile() (no loss, no optimizer)"
                if getattr(inputs.model, "optimizer", None) is None
                else "compiled without a loss (loss=None)")
        raise ConfigError(f"The model {cfg.model_path} was saved {what}, so replay cannot "
                          f"train it as you did: there is no loss to watch. Call "
                          f"model.compile(optimizer=..., loss=...) before model.save() and "
                          f"give replay that file; `nandoc check` still checks the model and "
                          f"the data without a loss.")
    d = diagnosis.examine(inputs, started)
    run_epochs = epochs if epochs is not None else cfg.train.epochs
    training = train_watched(inputs, epochs=run_epochs, max_steps=steps, progress=progress)
    trained = time.perf_counter()
    log, failure = training.log, training.failure
    extra: dict[str, Any] = {"replay": _summary(log, run_epochs, steps)}
    if log.error:
        extra["replay"]["error"] = log.error
    if training.failure is not None:
        extra["failing_batch"] = training.failing_batch()
    observe(d, inputs, training)
    if failure is not None and verify_fixes:
        train = cfg.train
        objects = {k: v for src in inputs.sources for k, v in src.objects.items()}
        d.findings = fixes.verify_all(inputs.model, rank(d.findings), failure=failure,
                                      data=inputs.data, batch_size=train.batch_size,
                                      shuffle=train.shuffle, seed=train.seed,
                                      initial=training.initial, custom_objects=objects)
    done = time.perf_counter()
    report = diagnosis.build_report(
        d, "replay", extra=extra, step_error=log.error,
        timings={"train_s": round(trained - started, 3), "total_s": round(done - started, 3)})
    if tensorboard is not None:
        try:
            write_events(tensorboard, log, failing_step=failure.global_step if failure else None,
                         first=report.first_nonfinite,
                         finding=report.findings[0] if report.findings else None,
                         histograms=activation_histograms(training.layer_pass))
        except OutputPathError as exc:  # the report still stands: said next to it, exit 2
            report.extra["tensorboard_error"] = str(exc)
    return report


def _summary(log: StepLog, epochs: int, steps: int | None) -> dict[str, Any]:
    n = len(log.loss)
    idx = np.unique(np.linspace(0, n - 1, min(n, SERIES_POINTS)).round().astype(int)) if n else []

    def clean(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {
        "epochs_requested": epochs, "steps_limit": steps, "steps_ran": log.steps_ran,
        "steps_per_epoch": log.steps_per_epoch, "stopped_by": log.stopped_by,
        "series": {"step": [int(i) + 1 for i in idx],
                   "loss": [clean(log.loss[i]) for i in idx],
                   "grad_norm": [clean(log.grad_norm[i]) for i in idx],
                   "layer_grad_norm": {
                       "layers": list(log.layers),
                       "values": [[clean(v) for v in log.layer_grad_norms[i]] for i in idx]}},
        "val_loss": {str(k): clean(v) for k, v in log.val_loss.items()},
    }
