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


def find(model: Any, path: str) -> Any | None:
    for p, layer in walk_layers(model):
        if p == path or p.split("/")[-1] == path.split("/")[-1]:
            return layer
    return None


def layer_op_findings(model: Any, path: str, x: np.ndarray, rows: np.ndarray,
                      sources: list[SourceFile], epoch: int | None = None,
                      step: int | None = None) -> list[Finding]:
    """The ops of layer `path` where a non-finite value or gradient is born on batch `x`."""
    import keras

    layer = find(model, path)
    if layer is None:
        return []
    try:
        feeder = keras.Model(model.inputs, layer.input)
        x_in = np.asarray(feeder(x, training=False), dtype=np.float32)
    except Exception:  # nested in a sub-model or a wrapper: not reachable from the inputs
        return []
    result = probe(lambda t: layer(t, training=False), [x_in], [str(s.path) for s in sources])
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
