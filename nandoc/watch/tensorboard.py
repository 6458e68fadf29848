"""TensorBoard event files of a watched run, written once at its end from the recorded step log
(no cost per training step), with `tf.summary` alone.

Tags: `nandoc/loss`, `nandoc/grad_norm` and `nandoc/layer_grad_norm/<layer>` per measured step
(step = the global step, from 1; for a replay resumed from a checkpoint, the original run's
global step, so the events overlay the run's own curves; a non-finite value is written as it
was, NaN or inf); at the failing step, the text summaries `nandoc/first_nonfinite` (where the
first non-finite value was seen) and `nandoc/finding` (the rank-1 finding: cause, title, where,
fix)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nandoc.atomic import OutputPathError, same_file
from nandoc.core.finding import Finding
from nandoc.core.records import FirstNonfinite, StepLog


def check_folder(option: str, folder: Path,
                 inputs: Mapping[str, Path | None] | None = None) -> None:
    """Before any work: `folder` is a folder (or can be created), is writable, and is neither
    one of the run's `inputs` nor inside an input folder (an image folder). OutputPathError."""
    folder = Path(folder)
    for role, source in (inputs or {}).items():
        if source is None:
            continue
        source = Path(source)
        inside = source.is_dir() and _within(folder, source)
        if same_file(folder, source) or inside:
            what = "is" if same_file(folder, source) else "is inside"
            raise OutputPathError(
                f"{option} {folder} {what} {role} ({source}): nandoc never writes into its "
                f"inputs. Choose another folder for {option}, e.g. {option} runs/nandoc.")
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(
            f"{option} {folder} exists and is not a folder: TensorBoard event files go into a "
            f"folder, created if missing. Choose a folder path for {option}, e.g. {option} "
            f"{folder.with_suffix('')}-tb.")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {folder} cannot be {'written' if existing == folder else 'created'}: "
            f"{existing} is not a writable folder. Choose a writable path for {option}.")


def _within(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def global_steps(log: StepLog) -> list[int]:
    """The global step (from 1) of each row of `log`, also after `trim` let rows go.

    A log that knows its steps per epoch (replay's) numbers each row by its epoch and step, as
    the original run did: epoch E step S is global step (E-1) x steps per epoch + S, also for a
    run resumed from a checkpoint mid-way. Otherwise (the callback's) rows count from 1."""
    n = len(log.loss)
    per_epoch = log.steps_per_epoch
    if per_epoch > 0 and len(log.epoch) == n and len(log.step) == n:
        return [(e - 1) * per_epoch + s for e, s in zip(log.epoch, log.step, strict=True)]
    dropped = max(log.steps_ran - n, 0)
    if not dropped:
        return list(range(1, n + 1))
    head = log.trimmed_head
    return list(range(1, head + 1)) + list(range(head + dropped + 1, log.steps_ran + 1))


def failing_global_step(log: StepLog, failing_step: int | None) -> int | None:
    """Where the failure's text summaries and histograms go: for a log numbered by epoch and
    step that stopped at a non-finite value, the global step of its last row (the failing
    step; for a validation failure, the epoch's last step), in the same numbering as the
    scalars; otherwise the caller's `failing_step`."""
    if failing_step is None or not log.nonfinite or not log.loss:
        return failing_step
    if log.steps_per_epoch > 0:
        return global_steps(log)[-1]
    return failing_step


def write_events(folder: Path, log: StepLog, *, gradients: bool = True,
                 failing_step: int | None = None, first: FirstNonfinite | None = None,
                 finding: Finding | None = None, option: str = "--tensorboard",
                 histograms: dict[str, tuple] | None = None) -> None:
    """Write the run's events into `folder` (created if missing). `gradients`: whether the log
    measured gradient norms (the callback sees only the loss). OutputPathError when the folder
    cannot be written. `failing_step`: the global step of the failure (see
    `failing_global_step`: a replay log places it itself, in the original run's numbering).
    `histograms`: layer -> `LayerRecord.histogram` of the failing batch's activations, written
    at the failing step."""
    import tensorflow as tf

    folder = Path(folder)
    failing_step = failing_global_step(log, failing_step)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writer = tf.summary.create_file_writer(str(folder))
        with writer.as_default():
            _write(tf, log, gradients, failing_step, first, finding)
            if failing_step is not None and histograms:
                _histograms(tf, histograms, failing_step)
        writer.close()
    except (OSError, tf.errors.OpError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "message", None) or str(exc)
        raise OutputPathError(f"Could not write the TensorBoard events to {folder} ({why}). "
                              f"Choose a writable folder for {option}.") from None


def _write(tf: Any, log: StepLog, gradients: bool, failing_step: int | None,
           first: FirstNonfinite | None, finding: Finding | None) -> None:
    steps = global_steps(log)
    series: list[tuple[str, Sequence[float]]] = [("nandoc/loss", log.loss)]
    if gradients:
        series.append(("nandoc/grad_norm", log.grad_norm))
        for j, layer in enumerate(log.layers):
            series.append((f"nandoc/layer_grad_norm/{layer}",
                           [row[j] if j < len(row) else float("nan")
                            for row in log.layer_grad_norms]))
    # Classic scalar values (what TensorBoard's scalars dashboard and EventAccumulator's
    # Scalars read), every tag of a step in one event: one write per step.
    for i, step in enumerate(steps):
        summary = tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag=tag, simple_value=float(values[i]))
            for tag, values in series if i < len(values)])
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
    if failing_step is None:
        return
    if first is not None:
        tf.summary.text("nandoc/first_nonfinite", first_text(first), step=failing_step)
    if finding is not None:
        tf.summary.text("nandoc/finding", finding_text(finding), step=failing_step)


def activation_histograms(layer_pass: Any) -> dict[str, tuple]:
    """layer -> the histogram of its finite activations on the failing batch (none when the
    run did not fail, or the pass kept none)."""
    records = getattr(layer_pass, "layers", None) or ()
    return {r.name: r.histogram for r in records if r.histogram is not None}


def _histograms(tf: Any, histograms: dict[str, tuple], step: int) -> None:
    """The failing batch's activations per layer, as classic histogram events (what
    TensorBoard's histograms dashboard and EventAccumulator's Histograms read)."""
    values = []
    for layer, (lo, hi, n, total, total_sq, edges, counts) in histograms.items():
        proto = tf.compat.v1.HistogramProto(min=lo, max=hi, num=n, sum=total,
                                            sum_squares=total_sq, bucket_limit=list(edges),
                                            bucket=[float(c) for c in counts])
        values.append(tf.compat.v1.Summary.Value(tag=f"nandoc/activations/{layer}",
                                                 histo=proto))
    summary = tf.compat.v1.Summary(value=values)
    tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)


def first_text(first: FirstNonfinite) -> str:
    d = first.to_dict()
    keys = ("epoch", "step", "where", "layer", "op", "file", "line", "rows", "detail")
    return "\n".join(f"- **{k}**: {d[k]}" for k in keys if d.get(k) not in (None, [], ""))


def finding_text(f: Finding) -> str:
    return "\n".join([f"- **cause**: {f.cause}", f"- **title**: {f.title}",
                      f"- **where**: {f.location.short()}", f"- **fix**: {f.fix}"])
