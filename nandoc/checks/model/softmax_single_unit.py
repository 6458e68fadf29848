"""softmax-single-unit: a softmax over an axis that holds one unit, so its output is always 1.

Found anywhere in the model, nested models and wrappers included: a layer whose activation is
softmax (Dense(1, activation="softmax"), Activation("softmax")) with a last axis of size 1, or a
Softmax layer whose `axis` covers only size-1 axes. log_softmax there is always 0 and is
reported the same way. Keras 3 refuses the capitalised identifier "Softmax" outright
(`Could not interpret activation function identifier: Softmax`), so a saved model cannot carry
it; a custom layer that stores the string is still matched case-insensitively.

The proof is measured, not assumed: the layer's own activation is run on random
pre-activations, and when the layer produces a model output, the model predicts on a small
random batch. Both must come out constant.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.analysis import remedies
from nandoc.core.evidence import num
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.registry import check
from nandoc.instrument.model_graph import activation_name, output_layers, output_shape, walk_layers

CONSTANT = {"softmax": 1.0, "log_softmax": 0.0}  # the one value each gives over one unit
WHY = {"softmax": "exp(z) / sum(exp(z)) = exp(z) / exp(z) = 1",
       "log_softmax": "z - log(sum(exp(z))) = z - z = 0"}
PROBE_SAMPLES = 8


def _single_unit_axes(layer: Any) -> tuple[int, ...] | None:
    """The axes the softmax reduces over, when they hold a single unit; else None."""
    shape = output_shape(layer)
    if type(layer).__name__ == "Softmax":
        if shape is None:
            return None
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else (layer.axis,)
        if not all(-len(shape) <= a < len(shape) for a in axes):
            return None
        return tuple(axes) if all(shape[a] == 1 for a in axes) else None
    size = shape[-1] if shape else getattr(layer, "units", None)
    return (-1,) if size == 1 else None


def _random_like(shape: tuple, fill: int, rng: np.random.Generator) -> np.ndarray:
    dims = [PROBE_SAMPLES] + [fill if d is None else int(d) for d in shape[1:]]
    return rng.normal(0.0, 5.0, size=dims).astype("float32")


def _run_activation(layer: Any, kind: str) -> np.ndarray:
    """The layer's own softmax on random pre-activations of its output's shape."""
    import keras

    shape = output_shape(layer) or (None, 1)
    z = _random_like(shape, 2, np.random.default_rng(0))
    fn = layer if type(layer).__name__ in ("Softmax", "Activation") else layer.activation
    if isinstance(fn, str):
        fn = keras.activations.get(kind)
    return keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(z)))


def _predict(model: Any, index: int) -> np.ndarray | None:
    """The model's output `index` on a random batch; None when the input is not one float array."""
    import keras

    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1 or "float" not in str(inputs[0].dtype):
        return None
    x = _random_like(tuple(inputs[0].shape), 4, np.random.default_rng(1))
    out = model(x, training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return keras.ops.convert_to_numpy(outs[index])


def fixes(finding: Finding) -> list[Candidate]:
    if not finding.location.layer:
        return []
    name = finding.location.layer.split("/")[-1]
    return [Candidate(finding.cause, f"sigmoid in place of the softmax of layer '{name}'",
                      remedies.sigmoid_for(name))]


@check(id="softmax-single-unit", needs=("model",), causes=("softmax-single-unit",), fixes=fixes)
def softmax_single_unit(model: Any) -> Iterator[Finding]:
    """Softmax over an axis of size 1: the layer outputs 1.0 whatever its input."""
    produces = {o.path: o for o in output_layers(model)}
    for path, layer in walk_layers(model):
        kind = activation_name(layer)
        if kind not in CONSTANT:
            continue
        axes = _single_unit_axes(layer)
        if axes is None:
            continue
        value = CONSTANT[kind]
        with warnings.catch_warnings():  # Keras warns about exactly this; we report it
            warnings.simplefilter("ignore")
            acts = _run_activation(layer, kind)
            out = produces.get(path)
            try:
                preds = _predict(model, out.index) if out is not None else None
            except Exception:  # an input the random batch does not fit: the layer proof stands
                preds = None
        if not np.all(acts == value):  # masked or otherwise not constant: no proof, no finding
            continue
        measured: dict[str, Any] = {
            "activation": kind, "axes": list(axes), "output_shape": list(output_shape(layer) or []),
            "probe_samples": int(acts.shape[0]), "probe_min": float(acts.min()),
            "probe_max": float(acts.max()), "constant": value,
        }
        proof = (f"{kind} of {acts.shape[0]} random pre-activations (std 5) gave exactly "
                 f"{num(value)} for every one")
        if preds is not None:
            measured.update({"output": out.output, "predict_samples": int(preds.shape[0]),
                             "predict_min": float(preds.min()), "predict_max": float(preds.max())})
            if preds.min() == preds.max():
                proof += (f"; the model predicts {num(float(preds.min()))} for all "
                          f"{preds.shape[0]} random inputs")
        yield Finding(
            cause="softmax-single-unit",
            severity=Severity.ERROR,
            confidence=0.95,
            title=f"{kind} over a single unit in layer '{path}': its output is always {num(value)}",
            evidence=(
                f"Layer '{path}' ({type(layer).__name__}) applies {kind} over an axis of size 1 "
                f"(output shape {tuple(output_shape(layer) or ())}): over one unit {WHY[kind]}, "
                f"whatever z. Measured: {proof}. Keras 3 hides it: binary_crossentropy reads "
                f"the logits a softmax caches on its output (_keras_logits), so the loss still "
                f"falls while the predictions never move and accuracy stays frozen at the "
                f"positive rate; no NaN tool fires."),
            location=Location(kind="layer", layer=path),
            fix=("For binary classification use Dense(1, activation='sigmoid') with "
                 "binary_crossentropy, or Dense(2, activation='softmax') with "
                 "sparse_categorical_crossentropy."),
            measured=measured,
        )
