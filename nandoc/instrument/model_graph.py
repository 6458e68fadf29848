"""Walk a loaded Keras model: nested layers by path, the layer behind each output,
activations, and which Normalization features divide by a (round-off) zero variance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# Layers that reshape or drop values but never move them out of the range they had: the
# activation that shapes an output is found behind them.
PASSTHROUGH = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "AlphaDropout", "Flatten", "Reshape", "Permute", "Identity", "RepeatVector",
               "ActivityRegularization")
# Activation layers that are not `Activation(fn)` and carry no `activation` attribute.
LAYER_ACTIVATIONS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                     "PReLU": "prelu", "ELU": "elu"}


def walk_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) for every layer, depth first, nested models and wrappers included.

    Paths join the names of the enclosing models: 'head/out' for layer 'out' in model 'head'.
    """
    import keras

    for layer in getattr(model, "layers", None) or []:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, prefix=f"{path}/")
        elif isinstance(layer, keras.layers.Wrapper) and hasattr(layer, "layer"):
            yield f"{path}/{layer.layer.name}", layer.layer


def activation_name(layer: Any) -> str | None:
    """Lower-case name of the activation a layer applies last, or None when it applies none
    nandoc can name. A custom (non-Keras) activation function comes back as 'custom:<name>'."""
    kind = LAYER_ACTIVATIONS.get(type(layer).__name__)
    if kind:
        return kind
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    if isinstance(act, str):  # a custom layer that keeps the identifier as saved
        return act.lower()
    name = getattr(act, "__name__", None) or type(act).__name__
    if not getattr(act, "__module__", "").startswith("keras"):
        return f"custom:{name}"
    return name.lower()


def last_axis(layer: Any) -> int | None:
    """Size of the last axis of the layer's output, when known."""
    shape = output_shape(layer)
    if shape and shape[-1] is not None:
        return int(shape[-1])
    units = getattr(layer, "units", None)
    return units if isinstance(units, int) else None


def output_shape(layer: Any) -> tuple | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        return None  # never called symbolically (inside a wrapper) or not built


@dataclass(frozen=True)
class OutputLayer:
    output: str  # the model's output name, as compile() keys losses
    index: int  # position in model.outputs
    path: str  # the layer that produces it, through nested models and passthrough layers
    layer: Any


def output_layers(model: Any) -> list[OutputLayer]:
    """The layer behind each model output, following nested models and passthrough layers."""
    outputs = list(getattr(model, "outputs", None) or [])
    names = list(getattr(model, "output_names", None) or [])
    found = []
    for i, tensor in enumerate(outputs):
        hit = _producer(model, tensor)
        if hit is not None:
            found.append(OutputLayer(names[i] if i < len(names) else hit[0], i, *hit))
    return found


def _producer(model: Any, tensor: Any, prefix: str = "") -> tuple[str, Any] | None:
    import keras

    for _ in range(64):  # a chain of passthrough layers, never a cycle
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "operation", None)
        if layer is None or isinstance(layer, keras.layers.InputLayer):
            return None
        if isinstance(layer, keras.Model):
            inner = list(layer.outputs)[history.tensor_index]
            return _producer(layer, inner, prefix=f"{prefix}{layer.name}/")
        if type(layer).__name__ in PASSTHROUGH:
            try:
                tensor = layer.input
            except (AttributeError, ValueError):
                return None
            continue
        return f"{prefix}{layer.name}", layer
    return None


def fed_by_input(model: Any, path: str) -> bool:
    """True when the layer at `path` receives the single model input unchanged."""
    node = model
    for name in path.split("/"):
        inputs = list(getattr(node, "inputs", None) or [])
        try:
            child = node.get_layer(name)
            if len(inputs) != 1 or child.input is not inputs[0]:
                return False
        except (AttributeError, ValueError):
            return False
        node = child
    return True


# A Normalization feature whose variance is zero, or only float32 round-off of zero.
ZERO_VAR = 1e-12
ROUND_OFF_STD = 1e-3  # std / |mean| below which a constant column's round-off is all it holds
ROUND_OFF_SCALE = 100.0


def embeddings_fed_by_input(model: Any) -> list[tuple[str, Any, int]]:
    """Embedding layers that read one of the model's inputs directly: (path, layer, the input's
    index). Their inputs are ids, not magnitudes."""
    import keras

    inputs = list(getattr(model, "inputs", None) or [])
    out = []
    for path, layer in walk_layers(model):
        if not isinstance(layer, keras.layers.Embedding):
            continue
        try:
            fed = layer.input
        except (AttributeError, ValueError):  # never called on a symbolic input
            continue
        index = next((i for i, t in enumerate(inputs) if fed is t), None)
        if index is not None:
            out.append((path, layer, index))
    return out


def zero_features(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Indices (into the flattened weights) whose variance is zero or round-off of zero."""
    std = np.sqrt(np.maximum(var, 0.0))
    scale = 1.0 / np.maximum(std, 1e-7)
    round_off = (std <= ROUND_OFF_STD * np.abs(mean)) & (scale >= ROUND_OFF_SCALE)
    return np.flatnonzero((var <= ZERO_VAR) | round_off)
