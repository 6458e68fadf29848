"""Losses evaluated on every training batch as fit forms them, with the saved weights'
predictions, to find the batch that breaks them: the batch whose variance or correlation is 0,
the constant window, the extreme row. The sampled batches of the layer passes and the points
the output can reach miss a loss whose denominator is a batch statistic."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from nandoc.analysis.loss_probe import loss_findings
from nandoc.config import Config
from nandoc.core.evidence import rows_phrase
from nandoc.core.finding import Finding, Severity
from nandoc.core.registry import check
from nandoc.instrument.batches import epoch_batches
from nandoc.instrument.outputs import ProbePoints
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.loading.named import feed

MAX_SECONDS = 2.0
# What a batch statistic does to a loss: a denominator (variance, correlation, norm) or the
# argument of a log that is 0 on one batch. The other causes show on the points the output can
# reach, where the loss probe finds them.
CAUSES = ("division-by-zero", "unclipped-log")
PREDICT_CHUNK = 4096


@check(id="loss-batch-search", needs=("model", "loss", "data"),
       wants=("sources", "suspects", "config"),
       causes=CAUSES)
def batch_search(model: Any, loss: list[LossInfo], data: Dataset,
                 sources: list[SourceFile] | None, suspects: tuple[Finding, ...] | None,
                 config: Config | None):
    """Losses evaluated on every training batch, to find the batch that breaks them."""
    train = data.train
    if train.n == 0 or len(list(getattr(model, "outputs", None) or [])) != 1:
        return
    custom = [info for info in loss if info.fn is not None and not info.builtin]
    if not custom:
        return
    batch_size = config.train.batch_size if config is not None else 32
    shuffle = config.train.shuffle if config is not None else False
    seed = config.train.seed if config is not None else 0
    y_pred = _predict(model, train.x)
    y_true = train.y.astype(np.float32).reshape(train.n, -1)
    deadline = time.perf_counter() + MAX_SECONDS
    for info in custom:
        found = _first_breaking(info, y_true, y_pred, batch_size, shuffle, seed, deadline)
        if found is None:
            continue
        epoch, step, idx = found
        rows = train.rows[idx]
        points = ProbePoints(y_true[idx], y_pred[idx], tuple(
            f"file row {r}, batch {step} of epoch {epoch}, the saved model's prediction"
            for r in rows))
        for f in loss_findings(info, points, sources or [], suspects or (), clear=False):
            if f.severity is not Severity.ERROR or f.cause not in CAUSES:
                continue
            bad = [int(rows[i]) for i in f.measured.get("rows", []) if i < len(rows)]
            yield f.with_(
                evidence=(f"Searching every batch of epoch {epoch} as fit forms it (batch size "
                          f"{batch_size}), batch {step} ({rows_phrase([int(r) for r in rows])}) "
                          f"is the first that breaks the loss. {f.evidence}"),
                location=replace(f.location, rows=tuple(bad[:10]) or None),
                measured={**f.measured, "batch": [epoch, step]})


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    parts = [np.asarray(model(feed(x[i:i + PREDICT_CHUNK]), training=False), dtype=np.float32)
             for i in range(0, len(x), PREDICT_CHUNK)]
    out = np.concatenate(parts, axis=0)
    return out.reshape(len(x), -1)


def _first_breaking(info: LossInfo, y_true: np.ndarray, y_pred: np.ndarray, batch_size: int,
                    shuffle: bool, seed: int, deadline: float
                    ) -> tuple[int, int, np.ndarray] | None:
    """(epoch, step, batch indices) of the first batch whose loss value or gradient is
    non-finite; None when none is (or the loss cannot be compiled: the loss probe says why)."""
    import tensorflow as tf

    fn = getattr(info.fn, "fn", info.fn)

    def value_and_grad(yt, yp):
        with tf.GradientTape() as tape:
            tape.watch(yp)
            value = tf.reduce_sum(tf.cast(fn(yt, yp), tf.float32))
        grad = tape.gradient(value, yp)
        ok = tf.math.is_finite(value)
        if grad is not None:
            ok = ok & tf.reduce_all(tf.math.is_finite(grad))
        return ok

    try:
        step_fn = tf.function(value_and_grad, autograph=False, reduce_retracing=True)
        epochs = (1, 2, 3) if shuffle else (1,)
        for epoch in epochs:
            for step, idx in enumerate(epoch_batches(len(y_true), batch_size, shuffle, seed,
                                                     epoch), start=1):
                if not bool(step_fn(tf.constant(y_true[idx]), tf.constant(y_pred[idx]))):
                    return epoch, step, idx
                if time.perf_counter() > deadline:
                    return None
    except Exception:  # cannot be compiled as fit compiles it: the loss probe reports that
        return None
    return None
