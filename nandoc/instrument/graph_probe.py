"""Evaluate a function of tensors op by op, forward and backward, and say where it turns
non-finite, in the user's own file and line.

The function is traced once into a TF1-style graph (as compiled `fit` traces it, without
autograph), with the gradient of its sum w.r.t. every input built in the same graph. Every
floating op output, forward and gradient, is then fetched in one call. A *root* op is one whose
output is non-finite while all its floating inputs are finite: where a NaN is born, not where it
merely passes. Gradient ops are mapped back to the forward op they differentiate
(`gradients/truediv_1_grad/RealDiv` -> `truediv_1`), and every op to the first frame of its
creation traceback that lies in one of the user's files.

A function that cannot be traced (a Python `if` on a tensor) is reported as such, with the
user's line, and probed eagerly one row at a time under check_numerics instead.
"""

from __future__ import annotations

import linecache
import re
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SELECT_OPS = {"Select", "SelectV2"}
_GRAD_NAME = re.compile(r"^gradients(?:_\d+)?/(.+?)_grad/")


@dataclass(frozen=True)
class SourceLine:
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class OpHit:
    """An op where a non-finite value is born."""

    phase: str  # "forward" or "backward"
    op_type: str  # the forward op's type (for backward hits too): Log, RealDiv, Sqrt, ...
    op_name: str
    where: SourceLine | None
    rows: tuple[int, ...]  # probe rows (axis 0) where it is non-finite, when rows are visible
    kinds: str  # "nan", "inf", "-inf" joined


@dataclass(frozen=True)
class SelectTrap:
    """A where/select whose unselected branch holds non-finite values."""

    op_name: str
    where: SourceLine | None
    rows: tuple[int, ...]
    unsafe_inputs: tuple[str, ...]  # names of the forward root ops feeding the unsafe branch
    branch: str = "false"  # which branch is non-finite where it is not selected


@dataclass(frozen=True)
class GraphProbe:
    traced: bool
    trace_error: str | None  # e.g. OperatorNotAllowedInGraphError: ...
    trace_error_at: SourceLine | None
    value: np.ndarray | None
    grads: tuple[np.ndarray, ...]  # d sum(f) / d input, per input
    forward_roots: tuple[OpHit, ...] = ()
    backward_roots: tuple[OpHit, ...] = ()
    traps: tuple[SelectTrap, ...] = ()
    covered: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @property
    def value_finite(self) -> bool:
        return self.value is not None and bool(np.all(np.isfinite(self.value)))

    def grad_rows_nonfinite(self, i: int = 0) -> tuple[int, ...]:
        g = self.grads[i] if i < len(self.grads) else None
        if g is None or g.ndim == 0:
            return ()
        bad = ~np.isfinite(g.reshape(g.shape[0], -1)).all(axis=1)
        return tuple(int(r) for r in np.flatnonzero(bad))


def user_frame(frames: Sequence[Any], user_files: set[str]) -> SourceLine | None:
    """The innermost frame in one of the user's files."""
    for fr in reversed(list(frames)):
        name = getattr(fr, "filename", None)
        if name and str(Path(name).resolve()) in user_files:
            text = (getattr(fr, "line", None) or linecache.getline(name, fr.lineno)).strip()
            return SourceLine(name, int(fr.lineno), text)
    return None


def _kinds(v: np.ndarray) -> str:
    parts = []
    if np.isnan(v).any():
        parts.append("nan")
    if np.isposinf(v).any():
        parts.append("inf")
    if np.isneginf(v).any():
        parts.append("-inf")
    return "/".join(parts)


def _bad_rows(v: np.ndarray, n: int) -> tuple[int, ...]:
    if v.ndim == 0 or v.shape[0] != n:
        return ()
    bad = ~np.isfinite(v.reshape(n, -1)).all(axis=1)
    return tuple(int(r) for r in np.flatnonzero(bad))


def probe(fn: Callable[..., Any], inputs: Sequence[np.ndarray], user_files: Sequence[str | Path]
          ) -> GraphProbe:
    """Trace `fn(*inputs)`, evaluate every op and every gradient op on `inputs`."""
    import tensorflow as tf

    files = {str(Path(f).resolve()) for f in user_files}
    specs = [tf.TensorSpec([None, *a.shape[1:]], tf.as_dtype(a.dtype)) for a in inputs]

    def graph_fn(*args):
        out = fn(*args)
        total = tf.reduce_sum(tf.cast(out, tf.float32))
        grads = tf.gradients(total, list(args))
        return [out, *[g if g is not None else tf.zeros_like(a) for g, a in zip(grads, args)]]

    try:
        wrapped = tf.compat.v1.wrap_function(graph_fn, specs)
    except Exception as exc:  # the user's code cannot be traced as compiled fit traces it
        at = user_frame(traceback.extract_tb(exc.__traceback__), files)
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return GraphProbe(False, message, at, None, ())
    graph = wrapped.graph
    feeds = list(wrapped.inputs)
    placeholders = {t.op.name for t in feeds}
    ops = [op for op in graph.get_operations()
           if op.name not in placeholders and op.type not in ("Const", "NoOp")
           and op.outputs and op.outputs[0].dtype.is_floating]
    fetch = [op.outputs[0] for op in ops] + list(wrapped.outputs)
    outputs = wrapped.prune(feeds=feeds, fetches=fetch)(*[tf.constant(a) for a in inputs])
    values = {op.name: np.asarray(v) for op, v in zip(ops, outputs)}
    values.update({t.op.name: np.asarray(a) for t, a in zip(feeds, inputs)})  # conditions read them
    out_value = np.asarray(outputs[len(ops)])
    grads = tuple(np.asarray(g) for g in outputs[len(ops) + 1:])
    n = int(inputs[0].shape[0])
    by_name = {op.name: op for op in ops}

    def where_of(op) -> SourceLine | None:
        return user_frame(op.traceback, files)

    def inputs_finite(op) -> bool:
        for t in op.inputs:
            v = values.get(t.op.name) if t.value_index == 0 else None
            if v is not None and not np.all(np.isfinite(v)):
                return False
        return True

    forward, backward, covered = [], [], set()
    for op in ops:
        is_grad = op.name.startswith("gradients")
        if not is_grad:
            at = where_of(op)
            if at is not None:
                covered.add((at.file, at.line))
        v = values[op.name]
        if np.all(np.isfinite(v)) or not inputs_finite(op):
            continue
        if not is_grad:
            forward.append(OpHit("forward", op.type, op.name, where_of(op), _bad_rows(v, n),
                                 _kinds(v)))
            continue
        m = _GRAD_NAME.match(op.name)
        fwd = by_name.get(m.group(1)) if m else None
        if fwd is not None:
            backward.append(OpHit("backward", fwd.type, fwd.name, where_of(fwd),
                                  _bad_rows(v, n), _kinds(v)))
    traps = _select_traps(ops, values, forward, where_of, n)
    return GraphProbe(True, None, None, out_value, grads, tuple(forward), tuple(backward),
                      traps, frozenset(covered))


def _ancestors(op, limit: int = 10_000) -> set[str]:
    seen: set[str] = set()
    stack = [t.op for t in op.inputs]
    while stack and len(seen) < limit:
        cur = stack.pop()
        if cur.name in seen:
            continue
        seen.add(cur.name)
        stack.extend(t.op for t in cur.inputs)
    return seen


def _select_traps(ops, values, forward: list[OpHit], where_of, n: int) -> tuple[SelectTrap, ...]:
    traps = []
    roots = list(dict.fromkeys(h.op_name for h in forward))  # in graph order: deterministic
    for op in ops:
        if op.type not in SELECT_OPS or op.name.startswith("gradients"):
            continue
        cond_t, a_t, b_t = op.inputs[0], op.inputs[1], op.inputs[2]
        cond = values.get(cond_t.op.name) if cond_t.dtype.is_floating else None
        if cond is None:
            cond = _eval_bool(cond_t, values)
        a, b = _value_of(a_t, values), _value_of(b_t, values)  # a branch may be a constant
        if cond is None or a is None or b is None:
            continue
        shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
        cond, a, b = (np.broadcast_to(x, shape) for x in (cond.astype(bool), a, b))
        unsafe = (cond & ~np.isfinite(b)) | (~cond & ~np.isfinite(a))
        if not unsafe.any():
            continue
        feeding = _ancestors(op)
        rows = _bad_rows(np.where(unsafe, np.nan, 0.0), n)
        branch = "false" if (cond & ~np.isfinite(b)).any() else "true"
        traps.append(SelectTrap(op.name, where_of(op), rows,
                                tuple(r for r in roots if r in feeding), branch))
    return tuple(traps)


def _eval_bool(tensor, values) -> np.ndarray | None:
    """Boolean conditions are not fetched with the floats; re-evaluate the common comparisons."""
    op = tensor.op
    cmp = {"Less": np.less, "LessEqual": np.less_equal, "Greater": np.greater,
           "GreaterEqual": np.greater_equal, "Equal": np.equal, "NotEqual": np.not_equal}
    if op.type in cmp and len(op.inputs) == 2:
        x = _value_of(op.inputs[0], values)
        y = _value_of(op.inputs[1], values)
        if x is not None and y is not None:
            return cmp[op.type](x, y)
    if op.type in ("LogicalAnd", "LogicalOr") and len(op.inputs) == 2:
        x, y = _eval_bool(op.inputs[0], values), _eval_bool(op.inputs[1], values)
        if x is not None and y is not None:
            return (np.logical_and if op.type == "LogicalAnd" else np.logical_or)(x, y)
    if op.type == "LogicalNot":
        x = _eval_bool(op.inputs[0], values)
        return None if x is None else ~x
    return None


def _value_of(tensor, values) -> np.ndarray | None:
    if tensor.op.type == "Const":
        from tensorflow.python.framework import tensor_util

        return tensor_util.MakeNdarray(tensor.op.get_attr("value"))
    return values.get(tensor.op.name)


@dataclass(frozen=True)
class EagerHit:
    row: int
    op_type: str | None
    where: SourceLine | None
    value_finite: bool
    grad_finite: bool
    message: str


def probe_eager_rows(fn: Callable[..., Any], inputs: Sequence[np.ndarray],
                     user_files: Sequence[str | Path]) -> list[EagerHit]:
    """Row by row, eagerly, under check_numerics: for functions that cannot be traced."""
    import tensorflow as tf

    files = {str(Path(f).resolve()) for f in user_files}
    hits = []
    n = int(inputs[0].shape[0])
    for row in range(n):
        args = [tf.constant(a[row:row + 1]) for a in inputs]
        value_ok, grad_ok = True, True
        op_type, at, message = None, None, ""
        with tf.GradientTape() as tape:
            for a in args:
                tape.watch(a)
            try:
                out = fn(*args)
            except Exception as exc:
                hits.append(EagerHit(row, None, user_frame(
                    traceback.extract_tb(exc.__traceback__), files), False, False,
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
                continue
        value_ok = bool(np.all(np.isfinite(np.asarray(out))))
        grads = tape.gradient(out, args)
        grad_ok = all(g is None or bool(np.all(np.isfinite(np.asarray(g)))) for g in grads)
        if value_ok and grad_ok:
            continue
        if not value_ok:  # replay the row under check_numerics to find the op and the line
            tf.debugging.enable_check_numerics()
            try:
                fn(*args)
            except Exception as exc:
                at = user_frame(traceback.extract_tb(exc.__traceback__), files)
                m = re.search(r'eagerly-executing op "(\w+)"', str(exc))
                op_type = m.group(1) if m else None
                message = str(exc).strip().splitlines()[-1][:200] if str(exc) else ""
            finally:
                tf.debugging.disable_check_numerics()
        hits.append(EagerHit(row, op_type, at, value_ok, grad_ok, message))
    return hits
