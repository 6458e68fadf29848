"""What NanDoctor does at the first non-finite step: the engine's diagnosis of the failing batch
(from the last finite weights), and the report it saves and prints."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from nandoc.core.records import FirstNonfinite, StepLog

BATCH_NAME = "the failing batch"


def diagnose_batch(model: Any, batches: list[Any], data: tuple[Any, Any] | None,
                   sources: tuple[Any, ...], steplog: StepLog, facts: dict[str, Any]
                   ) -> tuple[Any, FirstNonfinite]:
    """The Report and the first non-finite record for the failing step, from the weights the
    model holds now (the last finite ones). `facts`: what the callback itself saw."""
    import numpy as np

    from nandoc._version import __version__
    from nandoc.core.report import Report
    from nandoc.drivers.arrays import build_inputs, describe
    from nandoc.engine import diagnosis
    from nandoc.engine.localise import failing_batch, localise
    from nandoc.errors import DataError
    from nandoc.instrument.batches import Batch
    from nandoc.keras.batch import to_arrays

    epoch, step = facts["epoch"], facts["step"]
    facts = dict(facts)
    try:
        arrays = to_arrays(batches, model.distribute_strategy, data)
        facts["batch_size"] = arrays.size
        if arrays.note:
            facts["note"] = arrays.note
        inputs = None
        if arrays.x is not None:  # arrays, or dicts / lists of them by model input and output
            try:
                inputs = build_inputs(model, arrays.x, arrays.y, batch_size=max(arrays.size, 1),
                                      sources=sources, rows=arrays.rows, name=BATCH_NAME)
            except DataError as exc:
                facts["note"] = (f"the batch could not be read as the model's data ({exc}); "
                                 f"nandoc diagnosed the model and its loss without it")
        if inputs is None:
            inputs = build_inputs(model, None, None, sources=sources)
        d = diagnosis.examine(inputs)
        first, localised = FirstNonfinite(where=None, epoch=epoch, step=step,
                                          extra=facts), []
        extra = {"failing_batch": failing_batch(None, epoch, step)}
        if inputs.data is not None:
            split = inputs.data.train
            batch = Batch(BATCH_NAME, np.arange(split.n), split.x, split.y, split.rows,
                          "the batch of the first non-finite step")
            loc = localise(model, inputs.loss, batch, epoch=epoch, step=step,
                           sources=list(inputs.sources), features=inputs.data.features,
                           inputs=inputs.data.inputs, file=None, hint="update",
                           seed=inputs.config.train.seed,
                           suspects=inputs.optional("suspects", ()), extra=facts)
            first, localised = loc.first, loc.findings
            extra["failing_batch"] = failing_batch(loc.layer_pass, epoch, step, first.rows)
            steplog.loss[-1] = loc.loss  # from the last finite weights, as the checks want it
            steplog.grad_norm[-1] = loc.grad_norm
        steplog.learning_rate[-1] = _learning_rate(model)
        diagnosis.observe(d, steplog, first, localised)
        report = diagnosis.build_report(d, "callback", inputs=describe(inputs), extra=extra)
    except Exception as exc:  # never break the user's training because of nandoc
        facts["diagnosis_error"] = f"{type(exc).__name__}: {exc}"
        first = FirstNonfinite(where=None, epoch=epoch, step=step, extra=facts)
        report = Report.build("callback", __version__, [], first_nonfinite=first,
                              extra={"failing_batch": failing_batch(None, epoch, step)})
    return report, first


def _learning_rate(model: Any) -> float:
    opt = getattr(model, "optimizer", None)
    try:
        return float(opt.learning_rate) if opt is not None else math.nan
    except (TypeError, ValueError, AttributeError):
        return math.nan


def publish(report: Any, report_path: Any, verbose: bool, stream: TextIO | None) -> None:
    """Save the JSON report and print the headline and the ranked report."""
    from nandoc.atomic import is_html, write_text_atomic
    from nandoc.render import Format, color_wanted, render

    out = stream or sys.stderr
    if report_path is not None:
        try:
            guard_report_path(report_path)  # again: a file may have appeared there meanwhile
            html = is_html(report_path)
            write_text_atomic(report_path, render(report, Format.HTML if html else Format.JSON))
        except OSError as exc:
            say(out, f"nandoc: could not write {report_path}: {exc.strerror}\n")
            report_path = None
        except ValueError as exc:
            say(out, f"nandoc: the report was not saved: {exc}\n")
            report_path = None
    if not verbose:
        return
    info = report.first_nonfinite.to_dict() if report.first_nonfinite is not None else {}
    color = color_wanted(out)
    if info.get("diagnosis_error"):
        body = f"nandoc could not run its checks on the batch: {info['diagnosis_error']}\n"
    elif report.findings:
        body = render(report, Format.TEXT, color=color)
    else:
        body = ("No nandoc check found a cause on this batch"
                + (f": {info['detail']}" if info.get("detail") else "") + ".\n")
    say(out, headline(info) + "\n" + body)
    if report_path is not None:
        say(out, f"nandoc: report saved to {report_path}\n")


def guard_report_path(path: Path, sources: tuple[Any, ...] = ()) -> None:
    """NanDoctor's report_path: not one of the `sources` files, in a folder that exists and is
    writable, and not over a file other than an earlier nandoc report (OutputPathError, a
    ValueError)."""
    from nandoc.atomic import OutputPathError, guard_outputs, replaceable_report

    inputs = {f"the file sources[{i}]": Path(s) for i, s in enumerate(sources)
              if isinstance(s, (str, os.PathLike))}
    guard_outputs({"report_path": path}, inputs)
    if not replaceable_report(path):
        raise OutputPathError(f"report_path {path} is an existing file that is not a nandoc "
                              f"report, and NanDoctor replaces only its own reports. Choose "
                              f"another path, or remove that file first.")


def say(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def headline(info: dict[str, Any]) -> str:
    loss = info.get("loss")
    what = []
    if loss is not None:
        what.append(f"the loss was still finite ({loss:.4g})")
    elif not info.get("loss_finite", True):
        what.append("the loss was non-finite")
    weights = info.get("nonfinite_weights") or []
    if weights:
        shown = ", ".join(weights[:3]) + (" …" if len(weights) > 3 else "")
        what.append(f"{len(weights)} weight(s) non-finite: {shown}")
    kept = info.get("restored_from")
    if kept and kept["step"] == 0:
        restored = f"; weights restored to those at the start of epoch {kept['epoch']}"
    elif kept:
        restored = (f"; weights restored to those after epoch {kept['epoch']}, step "
                    f"{kept['step']}")
    else:
        restored = "; no finite weights had been kept, the weights are left as they are"
    detail = str(info.get("detail") or "").replace("batch 'first' has", "the batch has")
    if info.get("where") == "update":
        detail = ("from the kept weights the batch runs finite forward and backward: the "
                  "update made the weights non-finite")
    where = f"; {detail}" if detail else ""
    return (f"nandoc: non-finite training step at epoch {info.get('epoch')}, step "
            f"{info.get('step')} ({'; '.join(what) or 'non-finite'}){where}{restored}.")


def guard_checkpoint_path(path: Path, sources: tuple[Any, ...] = (),
                          report_path: Path | None = None) -> None:
    """NanDoctor's checkpoint_path: a `.keras` file in a writable folder, not one of the
    `sources` files nor the report, and not over a file other than an earlier NanDoctor
    checkpoint (one with its nandoc sidecar): OutputPathError, a ValueError."""
    from nandoc.atomic import OutputPathError, guard_outputs
    from nandoc.loading.checkpoint import sidecar

    path = Path(path)
    if path.suffix != ".keras":
        raise OutputPathError(f"checkpoint_path {path} must end in .keras: the last finite "
                              f"state is saved with model.save() (weights and optimizer "
                              f"state), which writes the .keras format.")
    inputs = {f"the file sources[{i}]": Path(s) for i, s in enumerate(sources)
              if isinstance(s, (str, os.PathLike))}
    guard_outputs({"checkpoint_path": path, "its sidecar": sidecar(path),
                   **({"report_path": report_path} if report_path is not None else {})},
                  inputs)
    if not _own_checkpoint(path):
        raise OutputPathError(f"checkpoint_path {path} is an existing file that NanDoctor did "
                              f"not write (it replaces only its own checkpoints, those with a "
                              f"{sidecar(path).name} next to them). Choose another path, or "
                              f"remove that file first.")


def _own_checkpoint(path: Path) -> bool:
    import json

    from nandoc.loading.checkpoint import sidecar

    side = sidecar(path)
    if not path.exists() and not side.exists():
        return True
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("nandoc_checkpoint") == path.name and \
        (not path.exists() or path.is_file())


def resume_point(kept: tuple[int, int] | None, steps_per_epoch: int | None
                 ) -> tuple[int, int] | None:
    """The callback's snapshot position (0-based epoch, steps done in it) as replay's
    (--epoch, --step), both from 1: the snapshot is the state before that step."""
    if kept is None:
        return None
    epoch, done = kept
    if steps_per_epoch and done >= steps_per_epoch:
        return epoch + 2, 1
    return epoch + 1, done + 1


def save_checkpoint(model: Any, path: Path, at: tuple[int, int], global_step: int
                    ) -> dict[str, Any]:
    """Save the model (holding the last finite state) and its sidecar; what the report says."""
    from nandoc.loading.checkpoint import write_sidecar

    guard_checkpoint_path(path)  # again: a file may have appeared there meanwhile
    epoch, step = at
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    write_sidecar(path, epoch, step, saved_by="NanDoctor", global_step=global_step)
    return {"path": str(path), "epoch": epoch, "step": step, "global_step": global_step,
            "replay": f"nandoc replay --from {path} --epoch {epoch} --step {step}"}


def current_strategy() -> Any:
    """The tf.distribute strategy whose scope is open, or None."""
    import tensorflow as tf

    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def multi_worker(strategy: Any) -> bool:
    """Whether `strategy` is a MultiWorkerMirroredStrategy across more than one replica, under
    which Keras 3's own fit fails (TF 2.21 / Keras 3.15: "Attempt to convert a value
    (PerReplica...)"). A single local worker trains as without a strategy."""
    import tensorflow as tf

    if strategy is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1) > 1


MULTI_WORKER = ("nandoc: NanDoctor cannot watch this run: Keras 3's fit does not support "
                "MultiWorkerMirroredStrategy across workers today (it fails with \"Attempt to "
                "convert a value (PerReplica...)\"), so NanDoctor stays off; to find the NaN, "
                "run `nandoc replay` on a single worker, or train with MirroredStrategy on one "
                "machine and NanDoctor.\n")


def finite_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None  # JSON has no NaN
