"""Custom losses (and metric functions) evaluated op by op, value and gradient, at given points:
the values the output can reach, or the model's real predictions on a failing batch.

This confirms or clears what the static read of the source suspected: an unclipped log, a
division or sqrt at zero, an exp that overflows, a where() whose unselected branch poisons the
gradient, and a Python `if` on a tensor (the trace itself fails, as compiled fit does). Shared
by the loss and metric probes and by the localisation of a failing step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.core.causes import CAUSES
from nandoc.core.evidence import first_sentence, num, plural
from nandoc.core.finding import Finding, Location, Severity
from nandoc.instrument.graph_probe import GraphProbe, OpHit, SourceLine, probe, probe_eager_rows
from nandoc.instrument.opcauses import MEANING, PYTHON_BRANCH_ERRORS
from nandoc.instrument.opcauses import cause_of as _cause
from nandoc.instrument.outputs import ProbePoints, probe_points
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.custom_objects import display_path as _display
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.loading.named import feed


def _describe(points: ProbePoints, row: int) -> str:
    yt = ", ".join(num(float(v)) for v in points.y_true[row][:3])
    yp = ", ".join(num(float(v)) for v in points.y_pred[row][:3])
    return f"y_true = {yt}, y_pred = {yp} ({points.notes[row]})"


def _callable(info: LossInfo) -> Any:
    import keras

    fn = info.fn
    if isinstance(fn, keras.losses.Loss) and (info.builtin or not hasattr(fn, "fn")):
        return fn.call  # a built-in wrapper's call keeps its settings (from_logits, ...)
    return getattr(fn, "fn", fn)


def reachable_points(model: Any, out, data: Dataset, passes: Any = None) -> ProbePoints:
    """What the output can reach, plus the model's own predictions on a few training rows:
    those the layer passes already made on their batches (in training mode, as the loss sees
    them in training), else a forward pass on the first 32 rows (a second eager forward pass
    of a 50 M-parameter model costs seconds)."""
    seen = [p for p in passes or () if p.y_pred is not None and len(p.y_pred)]
    if seen and len(getattr(model, "outputs", None) or ()) == 1:
        preds = np.concatenate([p.y_pred for p in seen])[:32]
        targets = np.concatenate([np.asarray(p.batch.y, dtype=np.float32).reshape(
            len(p.y_pred), -1) for p in seen])[:32]
        if targets.shape[1] == np.asarray(data.train.y).reshape(len(data.train.y), -1).shape[1]:
            return probe_points(out, data.train.y, preds, prediction_targets=targets)
    x = data.train.x[:32]
    preds = np.asarray(model(feed(x), training=False)) if len(x) else None
    return probe_points(out, data.train.y, preds)


def loss_findings(info: LossInfo, points: ProbePoints, sources: list[SourceFile],
                  suspects: tuple[Finding, ...] = (), clear: bool = True) -> list[Finding]:
    """Probe one custom loss at `points` (reachable values, or a real failing batch) and
    judge what it shows. `suspects`: the run's static suspects (the `suspects` measurement),
    whose fixes confirmed findings reuse; with `clear`, those it covered without harm are
    cleared."""
    statics = [f for f in suspects if f.basis == "static"]
    fn = _callable(info)
    files = [f for f in [info.file, *(str(s.path) for s in sources)] if f]
    result = probe(fn, [points.y_true, points.y_pred], files)
    if result.traced:
        found = list(_from_graph(info, fn, result, points, files, sources, statics))
    else:
        found = list(_from_failed_trace(info, fn, result, points, files, sources, statics))
    if clear:
        found += list(_cleared(info, result, points, statics, found, sources))
    return found


def _quoted(at: SourceLine | None, sources) -> str:
    """`losses.py:15 (`the line`)`, or '?' where the line is unknown."""
    if at is None:
        return "?"
    return f"{Path(_display(at.file, sources)).name}:{at.line} (`{at.text}`)"


def _loc(info: LossInfo, path: str | None, line: int | None, sources, op: str | None = None
         ) -> Location:
    return Location(kind="loss", name=info.name, file=_display(path, sources) if path else None,
                    line=line, op=op)


def _static_fix(statics: list[Finding], cause: str, file: str | None, line: int | None) -> str:
    for f in statics:
        if f.cause == cause and f.location.file == file and f.location.line == line:
            return f.fix
    return CAUSES[cause].fix


def _from_graph(info, fn, result: GraphProbe, points: ProbePoints, files, sources, statics
                ) -> Iterator[Finding]:
    n = len(points.notes)
    grad_bad = set(result.grad_rows_nonfinite(1))
    trapped_ops: set[str] = set()
    for trap in result.traps:
        rows = sorted(set(trap.rows) & grad_bad) if grad_bad else []
        if not rows:
            continue
        trapped_ops.update(trap.unsafe_inputs)
        sub = probe(fn, [points.y_true[rows], points.y_pred[rows]], files)
        value = "finite" if sub.value_finite else "non-finite"
        at = trap.where
        file = _display(at.file, sources) if at else None
        yield Finding(
            cause="where-gradient-trap", severity=Severity.ERROR, confidence=0.95,
            title=f"where() in loss '{info.name}' passes a NaN gradient from its unselected "
                  f"branch",
            evidence=(f"At {len(rows)} of the {n} probe points, e.g. "
                      f"{_describe(points, rows[0])}, the loss value is {value} but d loss / "
                      f"d y_pred is NaN: where() at {_quoted(at, sources)} selects the safe "
                      f"branch, while the other branch is inf/NaN there "
                      f"(ops {', '.join(trap.unsafe_inputs) or '?'}); where() sends that branch a "
                      f"zero gradient and 0 × inf = NaN. Training turns the weights NaN at the "
                      f"first batch that reaches such a point; float64 only delays it."),
            location=_loc(info, at.file if at else None, at.line if at else None, sources,
                          op="where"),
            fix=_static_fix(statics, "where-gradient-trap", file, at.line if at else None),
            measured={"rows": rows, "probe_points": n, "value_finite": sub.value_finite,
                      "unsafe_ops": list(trap.unsafe_inputs), "unsafe_branch": trap.branch,
                      "function": getattr(fn, "__name__", info.name)},
        )
    hits = [h for h in result.forward_roots if not result.value_finite]
    hits += [h for h in result.backward_roots if h.op_name not in trapped_ops]
    yield from _grouped(info, hits, points, sources, statics, how="traced op by op")


def _grouped(info, hits: list[OpHit], points: ProbePoints, sources, statics, how: str
             ) -> Iterator[Finding]:
    groups: dict[tuple, list[OpHit]] = defaultdict(list)
    for h in hits:
        # Inside a built-in loss, a non-finite value means the output reaches values outside
        # the loss's domain (a linear output into poisson's log): the output and the loss
        # do not match.
        cause = _cause(h) if not info.builtin else \
            ("activation-loss-mismatch" if _cause(h) is not None else None)
        if cause is not None:
            groups[(cause, h.where.file if h.where else None,
                    h.where.line if h.where else None)].append(h)
    n = len(points.notes)
    for (cause, path, line), group in groups.items():
        rows = sorted({r for h in group for r in h.rows})
        phase = "gradient" if all(h.phase == "backward" for h in group) else "value"
        text = group[0].where.text if group[0].where else ""
        code = f" (`{text}`)" if text else (" (inside the built-in loss)" if info.builtin
                                            else "")
        file = _display(path, sources) if path else None
        example = f", e.g. {_describe(points, rows[0])}" if rows else ""
        yield Finding(
            cause=cause, severity=Severity.ERROR, confidence=0.92,
            title=(f"{group[0].op_type} in {'the built-in ' if info.builtin else ''}loss "
                   f"'{info.name}' turns the {phase} non-finite"
                   + (f" at {Path(file).name}:{line}" if file else "")),
            evidence=(f"Evaluated {how} at {n} points the output can reach: "
                      f"{group[0].op_type}{code} gives {group[0].kinds} in the {phase} at "
                      f"{plural(len(rows), 'point')}{example}. {MEANING.get(cause, '')}."),
            location=_loc(info, path, line, sources, op=group[0].op_type),
            fix=(_builtin_fix(info) if info.builtin else _static_fix(statics, cause, file, line)),
            measured={"rows": rows, "probe_points": n, "phase": phase,
                      "ops": sorted({h.op_name for h in group})},
        )


def _builtin_fix(info: LossInfo) -> str:
    return (f"The built-in loss '{info.name}' is evaluated outside its domain here: make the "
            f"output layer's range match what the loss expects (e.g. a softplus or exp output "
            f"for poisson, a sigmoid for probabilities, from_logits=True for a linear output), "
            f"or pick the loss that matches the output.")


def _from_failed_trace(info, fn, result: GraphProbe, points, files, sources, statics
                       ) -> Iterator[Finding]:
    at = result.trace_error_at
    error = result.trace_error or ""
    if not any(s in error for s in PYTHON_BRANCH_ERRORS):
        raise RuntimeError(f"the loss '{info.name}' could not be traced: {error}")
    yield Finding(
        cause="tensor-python-branch", severity=Severity.ERROR, confidence=0.98,
        title=f"Python branch on a tensor in loss '{info.name}' breaks compiled training",
        evidence=(f"Tracing the loss the way compiled model.fit does raised "
                  f"{first_sentence(error)} at {_quoted(at, sources)}: fit stops at its first "
                  f"step. With "
                  f"run_eagerly=True it raises 'The truth value of an array with more than one "
                  f"element is ambiguous' instead, and only a batch of one sample runs."),
        location=_loc(info, at.file if at else None, at.line if at else None, sources,
                      op="if"),
        fix=CAUSES["tensor-python-branch"].fix,
        measured={"error": error[:300]},
    )
    hits = probe_eager_rows(fn, [points.y_true, points.y_pred], files)
    as_ops = [OpHit("forward" if not h.value_finite else "backward", h.op_type or "", "",
                    h.where, (h.row,), "nan/inf") for h in hits if h.op_type]
    yield from _grouped(info, as_ops, points, sources, statics,
                        how="one sample at a time, eagerly (the branch prevents tracing)")


def _cleared(info, result: GraphProbe, points, statics: list[Finding], found: list[Finding],
             sources) -> Iterator[Finding]:
    """Static suspects on lines the probe ran, where nothing non-finite appeared."""
    if not result.traced:
        return
    covered = {(str(Path(f).resolve()), line) for f, line in result.covered}
    confirmed = {f.place for f in found}
    for s in statics:
        file, line = s.location.file, s.location.line
        if not file or not line or s.place in confirmed:
            continue
        if (str(Path(file).resolve()), line) not in covered:
            continue
        if s.cause == "tensor-python-branch":
            why = "the loss traced as compiled fit traces it, so this branch is not on a tensor"
        else:
            why = (f"evaluated op by op at {len(points.notes)} points the output can reach, its "
                   f"value and gradient stayed finite")
        yield s.with_(
            severity=Severity.INFO, confidence=0.6, basis="measured",
            title=f"cleared: {s.title}",
            evidence=f"Suspected from the code, but {why}.",
            fix="Nothing to do for this line, unless the output can leave the probed range.",
        )
