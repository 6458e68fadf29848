"""activation-loss-mismatch: the output's activation and the loss's from_logits disagree.

For every output with a built-in cross-entropy (binary, categorical, sparse categorical, and
the two focal ones), the activation that last shapes the output (behind nested models and
Dropout/Flatten/Reshape) is read and compared with the loss's `from_logits`:

- an unbounded output (linear, relu, tanh, ...) with from_logits=False: ERROR. The binary and
  sparse losses clip it to [1e-7, 1 - 1e-7], so every prediction outside (0, 1) scores a finite
  16.1 with a zero gradient; the categorical ones first divide by the row's sum, which is NaN
  when a row sums to 0. Both are measured on the loss itself.
- a probability output with from_logits=True. Measured in Keras 3.15 on TensorFlow: when the
  output is the sigmoid/softmax itself, binary/categorical/sparse cross-entropy ignore
  from_logits and read the logits the activation cached on its output (`_keras_logits`), only
  warning; training is identical to from_logits=False (also through nested models). That is
  INFO: the model breaks only where the cache is lost (another backend, a loss called on saved
  predictions). The focal losses apply sigmoid/softmax again to the probabilities, which trains
  badly (the loss has a floor above 0, measured): WARNING. So does any probability activation
  that caches nothing (hard_sigmoid, sparsemax).

Healthy pairs stay silent; custom losses and activations nandoc cannot name are not judged.
Findings are "static" (a read of the structure, probed on synthetic outputs): the step check
that sees real outputs leave [0, 1] reports the same loss and layer and supersedes them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.core.evidence import num
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.model_graph import OutputLayer, activation_name, last_axis, output_layers
from nandoc.loading.model import LossInfo

BINARY = {"binary_crossentropy", "binary_focal_crossentropy"}
CATEGORICAL = {"categorical_crossentropy", "categorical_focal_crossentropy"}
SPARSE = {"sparse_categorical_crossentropy"}
PROBABILITY = {"sigmoid", "softmax", "hard_sigmoid", "sparse_sigmoid", "sparsemax"}
CACHES_LOGITS = {"sigmoid", "softmax"}  # keras.activations set output._keras_logits
READS_CACHE = {"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"}
H = 1e-3  # finite-difference step for the gradient probe


def loss_kind(info: LossInfo) -> str | None:
    """The built-in cross-entropy behind a LossInfo, whatever name the user gave it."""
    if not info.builtin:
        return None
    fn = getattr(info.fn, "fn", info.fn)  # LossFunctionWrapper -> its function
    name = getattr(fn, "__name__", None) or info.name
    return name if name in BINARY | CATEGORICAL | SPARSE else None


def _loss(info: LossInfo, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import keras

    value = info.fn(keras.ops.convert_to_tensor(y_true), keras.ops.convert_to_tensor(y_pred))
    return float(np.mean(keras.ops.convert_to_numpy(value)))


def _targets(kind: str, width: int) -> np.ndarray:
    if kind in SPARSE:
        return np.zeros((1, 1), "float32")
    if kind in BINARY:
        return np.ones((1, width), "float32")
    return np.eye(width, dtype="float32")[:1]


def probe_unbounded(info: LossInfo, kind: str, width: int) -> dict[str, Any]:
    """Loss (and its gradient) at an output a linear layer reaches but a probability cannot."""
    y_true = _targets(kind, width)
    if kind in CATEGORICAL:  # the loss divides by the row's sum: make it 0
        y_pred = np.zeros((1, width), "float32")
        y_pred[0, :2] = [1.0, -1.0]
        return {"y_pred": y_pred[0].tolist(), "loss": _loss(info, y_true, y_pred)}
    y_pred = np.full((1, width), -1.0, "float32")
    grads = []
    for i in range(y_pred.shape[1]):
        step = np.zeros_like(y_pred)
        step[0, i] = H
        grads.append((_loss(info, y_true, y_pred + step) - _loss(info, y_true, y_pred - step))
                     / (2 * H))
    return {"y_pred": y_pred[0].tolist(), "loss": _loss(info, y_true, y_pred),
            "gradient_norm": float(np.linalg.norm(grads))}


def probe_floor(info: LossInfo, kind: str, width: int) -> dict[str, Any]:
    """The loss of a perfect probability prediction read as logits: 0 is out of reach."""
    y_true = _targets(kind, width)
    y_pred = np.ones((1, width), "float32") if kind in BINARY else \
        np.eye(width, dtype="float32")[:1]
    return {"y_pred": y_pred[0].tolist(), "loss": _loss(info, y_true, y_pred)}


def _judge(info: LossInfo, kind: str, out: OutputLayer, act: str) -> Finding | None:
    width = last_axis(out.layer) or 1
    if kind not in BINARY and width == 1:
        return None  # one class: a shape problem (softmax-single-unit's), not this one
    loc = Location(kind="loss", name=info.name, layer=out.path)
    # "static": a read of the structure. The step check that sees real outputs leave [0, 1] at
    # the same loss and layer supersedes it.
    base = dict(cause="activation-loss-mismatch", location=loc, basis="static")
    measured: dict[str, Any] = {"loss": kind, "activation": act, "from_logits": info.from_logits,
                                "output": out.output, "width": width}
    if not info.from_logits and act not in PROBABILITY:
        probe = probe_unbounded(info, kind, width)
        measured["probe"] = probe
        shown = ", ".join(num(v) for v in probe["y_pred"][:4])
        if "gradient_norm" in probe:
            effect = (f"at y_pred = [{shown}] the loss is {num(probe['loss'])} with gradient "
                      f"{num(probe['gradient_norm'])}: Keras clips the 'probability' to "
                      f"[1e-7, 1 - 1e-7], so every prediction outside (0, 1) stops learning, "
                      f"and a hand-written log of it is NaN")
        else:
            effect = (f"at y_pred = [{shown}], a row summing to 0, the loss is "
                      f"{num(probe['loss'])}: Keras divides the 'probabilities' by their sum")
        return Finding(
            severity=Severity.ERROR, confidence=0.85,
            title=f"loss '{info.name}' reads the {act} output of layer '{out.path}' as "
                  f"probabilities (from_logits=False)",
            evidence=f"Output '{out.output}' ends in a {act} activation, not bounded to "
                     f"[0, 1], but {kind} expects probabilities. Measured on the loss: "
                     f"{effect}.",
            fix=f"Keep the {act} output and pass from_logits=True to the loss (the stable "
                f"pair), or end the model in "
                f"{'sigmoid' if kind in BINARY else 'softmax'}.",
            measured=measured, **base)
    if info.from_logits and act in PROBABILITY:
        rescued = act in CACHES_LOGITS and kind in READS_CACHE
        measured["keras_reads_cached_logits"] = rescued
        title = (f"loss '{info.name}' has from_logits=True but layer '{out.path}' outputs "
                 f"{act} probabilities")
        fix = f"Pass from_logits=False, or remove the {act} and keep from_logits=True."
        if rescued:
            return Finding(
                severity=Severity.INFO, confidence=0.7, title=title, fix=fix, measured=measured,
                evidence=f"Keras 3 on TensorFlow ignores from_logits here: {kind} reads the "
                         f"logits the {act} cached on its output (_keras_logits) and only "
                         f"warns, so training is the same as with from_logits=False. It breaks "
                         f"wherever that cache is lost: another Keras backend, or the loss "
                         f"called on stored predictions.", **base)
        probe = probe_floor(info, kind, width)
        measured["probe"] = probe
        return Finding(
            severity=Severity.WARNING, confidence=0.8, title=title, fix=fix, measured=measured,
            evidence=f"{kind} applies {'sigmoid' if kind in BINARY else 'softmax'} again to "
                     f"the {act} probabilities: a perfect prediction "
                     f"[{', '.join(num(v) for v in probe['y_pred'][:4])}] still scores "
                     f"{num(probe['loss'])}, not 0, so the loss has a floor and gradients are "
                     f"squashed; it trains badly rather than NaN.", **base)
    return None


@check(id="activation-loss-mismatch", needs=("model", "loss"),
       causes=("activation-loss-mismatch",))
def activation_loss_mismatch(model: Any, loss: list[LossInfo]) -> Iterator[Finding]:
    """Output activation and cross-entropy from_logits disagree (probabilities vs logits)."""
    outputs = output_layers(model)
    for info in loss:
        kind = loss_kind(info)
        if kind is None:
            continue
        for out in outputs:
            if info.output is not None and info.output != out.output:
                continue
            act = activation_name(out.layer)
            if act is None or act.startswith("custom:"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = _judge(info, kind, out, act)
            if found is not None:
                yield found
