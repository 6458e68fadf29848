"""What a model's output can reach: its final activation and the values it can take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoc.instrument.model_graph import activation_name, output_layers

# Layers that join branches: each column of the output may have its own range (a linear mean
# next to a softplus variance), so no one range can be assumed for all of them.
MERGE_LAYERS = frozenset({"Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum",
                          "Minimum", "Dot"})


@dataclass(frozen=True)
class OutputInfo:
    layer: str  # the layer that produces the output
    activation: str  # "sigmoid", "softmax", "linear", "relu", "tanh", ... lower-case
    width: int | None


def output_info(model: Any) -> OutputInfo | None:
    """The activation that shapes a single-output model's values, seen through nested models
    and passthrough layers (Dropout, Reshape, ...)."""
    outs = output_layers(model)
    if len(outs) != 1 or len(getattr(model, "outputs", None) or []) != 1:
        return None
    name = activation_name(outs[0].layer) or (
        "mixed" if type(outs[0].layer).__name__ in MERGE_LAYERS else "linear")
    shape = tuple(model.outputs[0].shape)
    width = int(shape[-1]) if shape and shape[-1] is not None else None
    return OutputInfo(outs[0].path, name, width)


@dataclass(frozen=True)
class ProbePoints:
    y_true: np.ndarray  # (n, targets)
    y_pred: np.ndarray  # (n, width)
    notes: tuple[str, ...]  # per row: why the output can take that value


_SATURATION = {
    0.0: "a sigmoid output is exactly 0.0 in float32 once its logit is below about -88",
    1.0: "a sigmoid output is exactly 1.0 in float32 once its logit is above about 17",
}


def _label_values(y: np.ndarray) -> list[float]:
    v = y[np.isfinite(y)]
    uniq = np.unique(v)
    if uniq.size <= 10:
        return [float(u) for u in uniq]
    picks = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return sorted({float(p) for p in picks})


def _candidates(out: OutputInfo, label: float) -> list[tuple[float, str]]:
    act = out.activation
    if act == "mixed":  # only the model's own predictions say what it reaches
        return []
    if act in ("sigmoid", "hard_sigmoid"):
        return [(0.0, _SATURATION[0.0]), (1e-7, "a nearly saturated sigmoid"),
                (0.5, "an undecided sigmoid"), (1 - 1e-7, "a nearly saturated sigmoid"),
                (1.0, _SATURATION[1.0])]
    if act == "tanh":
        return [(-1.0, "tanh saturates to exactly -1.0"), (0.0, "tanh at 0"),
                (1.0, "tanh saturates to exactly 1.0")]
    if act in ("relu", "relu6", "elu", "selu", "softplus", "exponential", "gelu", "silu",
               "swish"):
        return [(0.0, f"a {act} output at 0"), (1e-7, f"a {act} output near 0"),
                (1.0, "an ordinary value"), (1e4, "a large output")]
    pts = [(label, "a prediction equal to its target, as a regression model reaches")]
    for d in (1e-3, 1.0, 100.0, 1e4):
        pts += [(label + d, "a prediction near or far from its target"),
                (label - d, "a prediction near or far from its target")]
    pts.append((0.0, "a linear output at 0"))
    return pts


def probe_points(out: OutputInfo, targets: np.ndarray, predictions: np.ndarray | None = None,
                 prediction_targets: np.ndarray | None = None) -> ProbePoints:
    """(y_true, y_pred) pairs over what the output can reach, plus real predictions (paired
    with `prediction_targets`, or with the first rows of `targets`)."""
    width = out.width or 1
    n_targets = targets.shape[1]
    y_true, y_pred, notes = [], [], []
    if n_targets == 1:
        for label in _label_values(targets[:, 0]):
            if out.activation == "softmax" and width > 1:
                for c in range(width):
                    onehot = np.zeros(width)
                    onehot[c] = 1.0
                    y_true.append([label])
                    y_pred.append(onehot)
                    notes.append("a confident softmax output (exact zeros elsewhere)")
                continue
            for value, note in _candidates(out, label):
                y_true.append([label])
                y_pred.append(np.full(width, value))
                notes.append(note)
    else:
        rows = targets[np.isfinite(targets).all(axis=1)][:8]
        for row in rows:
            for value, note in _candidates(out, 0.0):
                y_true.append(row)
                y_pred.append(np.full(width, value))
                notes.append(note)
    if predictions is not None and predictions.size:
        paired = targets if prediction_targets is None else prediction_targets
        k = min(len(predictions), len(paired))
        for i in range(k):
            y_true.append(paired[i])
            y_pred.append(predictions[i])
            notes.append("the model's own prediction on a training sample")
    return ProbePoints(np.asarray(y_true, dtype=np.float32), np.asarray(y_pred, dtype=np.float32),
                       tuple(notes))
