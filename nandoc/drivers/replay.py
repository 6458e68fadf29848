"""`nandoc replay`, the driver: train a watched copy from the saved model and the configured
data, stop at the first non-finite value, localise it, hand what training showed to the
engine, verify the candidate fixes, and return the Report."""

from __future__ import annotations

import dataclasses
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
from nandoc.loading.checkpoint import Resume, check_step, load_weights
from nandoc.watch.step import StepStats
from nandoc.watch.tensorboard import activation_histograms, check_folder, write_events

SERIES_POINTS = 500


def replay(cfg: Config, *, epochs: int | None = None, steps: int | None = None,
           verify_fixes: bool = True,
           progress: Callable[[int, int, int, StepStats], None] | None = None,
           tensorboard: Path | None = None, resume: Resume | None = None) -> Report:
    """`tensorboard`: a folder (created if missing) for the run's TensorBoard events, written
    at the end from the step log. `resume`: start from a checkpoint at an epoch (and step) of
    the original run, with that epoch's batches in nandoc's order (`--from`)."""
    started = time.perf_counter()
    if tensorboard is not None:  # before any work, as the CLI does
        check_folder("--tensorboard", tensorboard, cfg.input_files(
            {"the --from checkpoint": resume.path if resume is not None else None}))
    model_file = cfg.model_path
    if resume is not None and not resume.weights_only:  # the architecture comes with it
        cfg = dataclasses.replace(cfg, model_path=resume.path)
    elif resume is not None and cfg.model_path is None:
        raise ConfigError(f"--from {resume.path} holds weights only: give the model they "
                          f"belong to as [model] path in nandoc.toml or as the MODEL argument, "
                          f"or a full model file saved with model.save('x.keras') as --from.")
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
    start = _resume(inputs, resume, model_file) if resume is not None else None
    d = diagnosis.examine(inputs, started)
    run_epochs = epochs if epochs is not None else cfg.train.epochs
    if resume is not None and epochs is None:  # the epochs the original run had left
        run_epochs = max(cfg.train.epochs - resume.epoch + 1, 1)
    training = train_watched(inputs, epochs=run_epochs, max_steps=steps, progress=progress,
                             start_epoch=resume.epoch if resume else 1,
                             skip_steps=resume.skip if resume else 0)
    trained = time.perf_counter()
    log, failure = training.log, training.failure
    offset = resume.global_offset(log.steps_per_epoch) if resume is not None else 0
    extra: dict[str, Any] = {"replay": _summary(log, run_epochs, steps, offset)}
    if start is not None:
        extra["replay"]["from"] = start
    if log.error:
        extra["replay"]["error"] = log.error
    if training.snapshot:
        extra["snapshot"] = training.snapshot
    if training.failure is not None:
        extra["failing_batch"] = training.failing_batch()
    observe(d, inputs, training)
    if failure is not None and verify_fixes:
        train = cfg.train
        objects = {k: v for src in inputs.sources for k, v in src.objects.items()}
        d.findings = fixes.verify_all(inputs.model, rank(d.findings), failure=failure,
                                      data=inputs.data, batch_size=train.batch_size,
                                      shuffle=train.shuffle, seed=train.seed,
                                      # from a checkpoint, a fix that needs the start of
                                      # training is tried from the checkpoint's epoch and step
                                      initial=training.initial, start=training.start,
                                      custom_objects=objects)
    done = time.perf_counter()
    report = diagnosis.build_report(
        d, "replay", extra=extra, step_error=log.error,
        timings={"train_s": round(trained - started, 3), "total_s": round(done - started, 3)})
    if tensorboard is not None:
        try:
            # TensorBoard steps are the original run's global steps, as the report's
            write_events(tensorboard, log,
                         failing_step=failure.global_step if failure else None,
                         first=report.first_nonfinite,
                         finding=report.findings[0] if report.findings else None,
                         histograms=activation_histograms(training.layer_pass))
        except OutputPathError as exc:  # the report still stands: said next to it, exit 2
            report.extra["tensorboard_error"] = str(exc)
    return report


def save_checkpoint(cfg: Config, epochs: int, path: Path) -> Path:
    """Train `epochs` epochs in nandoc's replay loop (no watching beyond it: a NaN before the
    end is an error) and save the model with its optimizer state to `path` (a `.keras`), with
    the sidecar that makes `replay --from path` start at epoch `epochs + 1`. Returns the
    sidecar. For building a checkpoint just before a failing epoch."""
    from nandoc.loading.checkpoint import write_sidecar

    inputs = load_inputs(cfg, sample=False)
    training = train_watched(inputs, epochs=epochs)
    if training.failure is not None or training.log.stopped_by != "done":
        raise ConfigError(f"Training stopped ({training.log.stopped_by}) before the end of "
                          f"epoch {epochs}: there is no finite state there to save. Save the "
                          f"checkpoint at an earlier epoch.")
    inputs.model.save(str(path))
    return write_sidecar(Path(path), epochs + 1, 1, saved_by="nandoc replay loop",
                         global_step=training.log.steps_ran + 1)


def _resume(inputs: Any, resume: Resume, model_file: Path | None) -> dict[str, Any]:
    """Load a weights-only checkpoint (the optimizer then starts fresh), refuse a step beyond
    the epoch; what the report says about where the replay started."""
    model = inputs.model
    per_epoch = -(-inputs.data.train.n // inputs.config.train.batch_size)
    check_step(resume, per_epoch)
    optimizer_state = "from the checkpoint"
    if resume.weights_only:
        load_weights(model, resume, model_file)
        from nandoc.analysis.remedies import optimizer_like

        model.compile(optimizer=optimizer_like(model.optimizer), loss=model.loss)
        optimizer_state = ("fresh: a weights-only checkpoint holds no optimizer state (Adam's "
                           "moments, the step count); save the full model (model.save) to "
                           "resume it exactly")
    return {"checkpoint": str(resume.path), "epoch": resume.epoch, "step": resume.step,
            "global_step": resume.global_offset(per_epoch) + 1,
            "weights_only": resume.weights_only, "optimizer_state": optimizer_state,
            "data_order": "nandoc's replay order for this epoch ([train] shuffle and seed): "
                          "the batches a full nandoc replay visits in this epoch, not "
                          "necessarily those Keras' fit shuffled"}


def _summary(log: StepLog, epochs: int, steps: int | None, offset: int = 0
             ) -> dict[str, Any]:
    n = len(log.loss)
    idx = np.unique(np.linspace(0, n - 1, min(n, SERIES_POINTS)).round().astype(int)) if n else []

    def clean(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {
        "epochs_requested": epochs, "steps_limit": steps, "steps_ran": log.steps_ran,
        "steps_per_epoch": log.steps_per_epoch, "stopped_by": log.stopped_by,
        "series": {"step": [offset + int(i) + 1 for i in idx],
                   "loss": [clean(log.loss[i]) for i in idx],
                   "grad_norm": [clean(log.grad_norm[i]) for i in idx],
                   "layer_grad_norm": {
                       "layers": list(log.layers),
                       "values": [[clean(v) for v in log.layer_grad_norms[i]] for i in idx]}},
        "val_loss": {str(k): clean(v) for k, v in log.val_loss.items()},
    }
