"""The optimizer's update, evaluated op by op: when a failing batch runs finite forward and
backward from the last finite weights yet the update breaks them, apply the same update to
copies of the weights and of the optimizer's state, eagerly, under check_numerics, and name the
op of the update where the non-finite value is born (Adam's 0/0 when its epsilon rounds to 0,
a sqrt of a negative accumulator, an overflowing multiply)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from nandoc.core.causes import CAUSES
from nandoc.core.finding import Finding, Location, Severity
from nandoc.instrument.opcauses import MEANING, OP_CAUSE
from nandoc.loading.named import feed

_OP = re.compile(r'op "?([A-Za-z0-9_]+)"?')


def update_op_findings(model: Any, x: np.ndarray, y: np.ndarray, epoch: int | None = None,
                       step: int | None = None) -> list[Finding]:
    """The op of the optimizer's update on batch (x, y) where a non-finite value is born."""
    import tensorflow as tf

    opt = getattr(model, "optimizer", None)
    if opt is None or not model.trainable_variables:
        return []
    with tf.GradientTape() as tape:
        x, y = feed(x), feed(y)
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
             for g, v in zip(grads, model.trainable_variables, strict=True)]
    if not all(bool(tf.reduce_all(tf.math.is_finite(tf.cast(g, tf.float32)))) for g in grads):
        return []  # the backward pass already shows it: not the update's doing
    copies = [tf.Variable(v, trainable=True, name="nandoc_copy") for v in
              model.trainable_variables]
    trial = type(opt).from_config(opt.get_config())
    trial.build(copies)
    for a, b in zip(opt.variables, trial.variables, strict=False):
        if tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype:
            b.assign(a)
    op = None
    tf.debugging.enable_check_numerics()
    try:
        trial.apply(grads, copies)
    except Exception as exc:  # check_numerics names the first op with a non-finite output
        found = _OP.search(str(exc))
        op = found.group(1) if found else None
    finally:
        tf.debugging.disable_check_numerics()
    if op is None:
        return []
    cause = OP_CAUSE.get(op)
    if cause is None:
        cause = "exp-overflow" if op in ("Mul", "AddV2", "Square", "Pow") else None
    if cause is None:
        return []
    name = type(opt).__name__
    dtypes = sorted({str(v.dtype) for v in model.trainable_variables})
    return [Finding(
        cause=cause, severity=Severity.ERROR, confidence=0.85,
        title=f"{op} in the {name} update turns the weights non-finite",
        evidence=(f"From the last finite weights the failing batch's loss and gradients are "
                  f"finite, but {name}'s update, applied op by op to copies of the weights "
                  f"({', '.join(dtypes)}) and of its state, gives a non-finite value first at "
                  f"{op}. {MEANING.get(cause, '')}."),
        location=Location(kind="optimizer", name=name, op=op, epoch=epoch, step=step),
        fix=(f"Look at {name}'s settings for the weights' dtype (epsilon, learning rate); "
             f"{CAUSES[cause].fix}"),
        measured={"op": op, "dtypes": dtypes},
    )]
