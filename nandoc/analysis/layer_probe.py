"""Any layer, built-in or custom, traced op by op on its real input: which op of the layer turns
a value or a gradient non-finite. Localisation uses it on the layer where the first non-finite
value of a failing step was born (an `exp` activation, a normalisation, an attention block)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.core.causes import CAUSES
from nandoc.core.evidence import plural, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.instrument.graph_probe import probe
from nandoc.instrument.model_graph import activation_name, walk_layers
from nandoc.instrument.opcauses import MEANING, cause_of
from nandoc.loading.custom_objects import SourceFile, display_path
from nandoc.loading.named import feed


def find(model: Any, path: str) -> Any | None:
    for p, layer in walk_layers(model):
        if p == path or p.split("/")[-1] == path.split("/")[-1]:
            return layer
    return None


def layer_op_findings(model: Any, path: str, x: np.ndarray, rows: np.ndarray,
                      sources: list[SourceFile], epoch: int | None = None,
                      step: int | None = None) -> list[Finding]:
    """The ops of layer `path` where a non-finite value or gradient is born on batch `x`."""
    reached = _reach(model, path, x)
    if reached is None:
        return []
    layer, call, inputs = reached
    x_in = inputs[0]
    result = probe(call, inputs, [str(s.path) for s in sources])
    hits = list(result.forward_roots) if result.traced and not result.value_finite else []
    hits += list(result.backward_roots) if result.traced else []
    if not any(cause_of(h) for h in hits):
        # Ops inside a loop (a recurrent cell) are not reached op by op: name what the layer
        # applies that is known to overflow.
        return _overflowing_activation(layer, path, x_in, rows, epoch, step)
    out: dict[tuple, Finding] = {}
    for hit in hits:
        cause = cause_of(hit)
        if cause is None or (cause, hit.op_type) in out:
            continue
        bad = [int(rows[i]) for i in hit.rows if i < len(rows)]
        phase = "value" if hit.phase == "forward" else "gradient"
        at = f" (`{hit.where.text}`)" if hit.where is not None else ""
        out[(cause, hit.op_type)] = Finding(
            cause=cause, severity=Severity.ERROR, confidence=0.9,
            title=f"{hit.op_type} in layer '{path}' turns the {phase} non-finite",
            evidence=(f"The layer's own ops, traced and evaluated one by one on its real input "
                      f"from the failing batch, give {hit.kinds} in the {phase} at "
                      f"{hit.op_type}{at} for {plural(len(bad) or len(rows), 'sample')}"
                      + (f", {rows_phrase(bad)}" if bad else "")
                      + f". {MEANING.get(cause, '')}."),
            location=Location(kind="layer", layer=path, name=type(layer).__name__,
                              op=hit.op_type, rows=tuple(bad[:10]) or None,
                              file=display_path(hit.where.file, sources)
                              if hit.where is not None else None,
                              line=hit.where.line if hit.where is not None else None,
                              epoch=epoch, step=step),
            fix=CAUSES[cause].fix,
            measured={"rows": bad, "phase": phase, "layer": path},
        )
    return list(out.values())


def _reach(model: Any, path: str, x: Any) -> tuple[Any, Any, list[np.ndarray]] | None:
    """(layer, call, inputs): the layer at `path` (nested models entered name by name), a
    function of its input tensors that calls it as the model does (several inputs, keyword
    arguments), and those inputs computed from batch `x`. None when they cannot be reached."""
    from keras import tree

    if path == model.name and model.name not in {p for p, _ in walk_layers(model)}:
        # A subclassed model the layer pass ran as one call: its own ops, on the batch
        if not isinstance(x, np.ndarray):
            return None
        return model, lambda t: _first(model(t, training=False)), [_as_input(x)]
    container, values, layer, node = model, feed(x), None, None
    for name in path.split("/"):
        layer = _child(container, name)
        node = _node_in(container, layer) if layer is not None else None
        if node is None:
            break
        values = _evaluate(container, node, values)
        if values is None:
            break
        container = layer
    if node is None or values is None:  # not by path (a wrapped layer): by name, from the top
        layer = find(model, path)
        node = _node_in(model, layer) if layer is not None else None
        values = _evaluate(model, node, feed(x)) if node is not None else None
        if values is None:
            return None
    arguments = node.arguments

    def call(*tensors: Any) -> Any:
        args, kwargs = arguments.fill_in(
            {id(kt): t for kt, t in zip(arguments.keras_tensors, tensors, strict=True)})
        return _first(layer(*args, **{**kwargs, "training": False}))

    inputs = [_as_input(v) for v in tree.flatten(values)]
    return (layer, call, inputs) if inputs else None


def _child(container: Any, name: str) -> Any | None:
    try:
        return container.get_layer(name)
    except (AttributeError, ValueError):
        return None


def _graph(container: Any) -> Any:
    graph = getattr(container, "_functional", None)  # a Sequential's functional graph
    return container if graph is None else graph


def _node_in(container: Any, layer: Any) -> Any | None:
    """The node where `container`'s graph calls `layer` (a shared layer has one per call)."""
    from keras.src.ops.function import make_node_key

    keys = getattr(_graph(container), "_nodes", None)
    for i, node in enumerate(getattr(layer, "_inbound_nodes", ())):
        if node.arguments.keras_tensors and (keys is None or make_node_key(layer, i) in keys):
            return node
    return None


def _evaluate(container: Any, node: Any, values: Any) -> list[np.ndarray] | None:
    """The values of `node`'s input tensors when `container` runs on `values`."""
    import keras
    from keras import tree

    try:
        inputs = getattr(_graph(container), "_inputs_struct", None)
        inputs = list(container.inputs) if inputs is None else inputs
        feeder = keras.Model(inputs, list(node.arguments.keras_tensors))
        if isinstance(values, list):  # the inputs of a nested model, as its own call gets them
            values = tree.pack_sequence_as(inputs, values)
        got = feeder(values, training=False)
    except Exception:  # not reachable from the container's inputs
        return None
    return [np.asarray(t) for t in (got if isinstance(got, (list, tuple)) else [got])]


def _as_input(v: Any) -> np.ndarray:
    """A probe input: floats as float32 (a float16 layer casts them as in training), integer
    token ids as they are."""
    a = np.asarray(v)
    return a if a.dtype.kind in "iub" else a.astype(np.float32)


def _first(out: Any) -> Any:
    """The first output of a layer that returns several (states, attention scores)."""
    from keras import tree

    flat = tree.flatten(out)
    return flat[0] if len(flat) > 1 else out


OVERFLOWING = ("exponential", "exp")


def _overflowing_activation(layer: Any, path: str, x_in: np.ndarray, rows: np.ndarray,
                            epoch: int | None, step: int | None) -> list[Finding]:
    parts = [(path, layer)]
    cell = getattr(layer, "cell", None) or getattr(getattr(layer, "layer", None), "cell", None)
    if cell is not None:
        parts.append((f"{path} (its cell)", cell))
    for where, part in parts:
        name = activation_name(part)
        if name not in OVERFLOWING:
            continue
        return [Finding(
            cause="exp-overflow", severity=Severity.ERROR, confidence=0.85,
            title=f"the exponential activation of layer '{path}' overflows",
            evidence=(f"Layer {where} applies activation='{name}', and on the failing batch its "
                      f"output turns non-finite from finite inputs (|input| up to "
                      f"{float(np.nanmax(np.abs(x_in))):.3g}): exp overflows float32 above "
                      f"88.7, and inf then meets a subtraction or a zero and becomes NaN."),
            location=Location(kind="layer", layer=path, name=type(layer).__name__, op="Exp",
                              epoch=epoch, step=step),
            fix=("Use a bounded activation (tanh, sigmoid) or softplus in place of exponential, "
                 "or clip the pre-activation before exp."),
            measured={"layer": path, "activation": name, "rows": [int(r) for r in rows[:10]]},
        )]
    return []
