"""data-unscaled: feature magnitudes that overflow float32 or blow up activations.

Thresholds on the largest |value| the model will see (after an input Normalization or
Rescaling layer, when the model has one):
  >= 1e12: error. Squares and products of such values (BatchNormalization's variance, MSE,
           the first gradients) come within a few orders of float32's 3.4e38 limit once summed
           over a batch and a layer's width; a NaN in the first steps is typical.
  >= 1e4, or a spread (std) >= 1e3: warning. Training is unstable and large learning rates
           diverge; the first forward and backward passes (check part 2) say whether they overflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.analysis import remedies
from nandoc.core.evidence import num, plural
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.registry import check
from nandoc.instrument.model_graph import embeddings_fed_by_input, zero_features
from nandoc.loading.dataset import Dataset
from nandoc.loading.table import ScannedFile

ERROR_ABS = 1e12
WARN_ABS = 1e4
WARN_STD = 1e3


def input_scaling(model: Any, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(offset, scale) of an input Normalization/Rescaling layer: seen = (x - offset) * scale."""
    if model is None:
        return None
    import keras

    first = next((layer for layer in model.layers
                  if not isinstance(layer, keras.layers.InputLayer)), None)
    if isinstance(first, keras.layers.Normalization):
        try:
            mean = np.asarray(first.mean, dtype=np.float64).reshape(-1)
            var = np.asarray(first.variance, dtype=np.float64).reshape(-1)
        except (AttributeError, TypeError, ValueError):
            return None
        if mean.size in (1, n_features) and not first.invert:
            mean = np.broadcast_to(mean, (n_features,))
            var = np.broadcast_to(var, (n_features,))
            scale = 1.0 / np.maximum(np.sqrt(var), keras.config.epsilon())
            # A zero-variance feature is zero-variance-normalization's finding, not this one's.
            scale = scale.copy()
            scale[zero_features(mean, var)] = np.nan
            return mean, scale
    if isinstance(first, keras.layers.Rescaling):
        scale = np.asarray(first.scale, dtype=np.float64).reshape(-1)
        offset = np.asarray(first.offset, dtype=np.float64).reshape(-1)
        if scale.size in (1, n_features) and offset.size in (1, n_features):
            s = np.broadcast_to(scale, (n_features,))
            return -np.broadcast_to(offset, (n_features,)) / s, s
    return None


def id_columns(model: Any, data: Dataset) -> set[str]:
    """Feature columns an Embedding reads as ids (token or category indices): their size is a
    vocabulary position, not a magnitude, so they are never 'unscaled'."""
    if model is None:
        return set()
    out: set[str] = set()
    names = [str(t.name).split(":")[0] for t in getattr(model, "inputs", None) or []]
    for _, _, index in embeddings_fed_by_input(model):
        if data.inputs:  # several named inputs: that input's columns
            name = names[index] if index < len(names) else None
            out.update(dict(data.inputs).get(name, ()))
        elif len(names) == 1:  # one input: every feature column feeds the Embedding
            out.update(data.features)
    return out


def fixes(finding: Finding) -> list[Candidate]:
    return [Candidate(finding.cause, "scale the features (median/IQR of the training rows)",
                      remedies.robust_scale)]


@check(id="data-unscaled", needs=("scan", "data"), wants=("model",), causes=("data-unscaled",),
       fixes=fixes)
def unscaled(scan: list[ScannedFile], data: Dataset, model: Any):
    """Feature columns whose magnitudes overflow float32 or blow up activations."""
    scaling = input_scaling(model, len(data.features))
    ids = id_columns(model, data)
    rows: list[dict[str, Any]] = []
    for scanned in scan:
        for i, name in enumerate(data.features):
            c = scanned.scan.columns.get(name)
            if c is None or c.n_finite == 0 or c.min is None or c.max is None or name in ids:
                continue
            lo, hi, std = c.min, c.max, c.std or 0.0
            if scaling is not None:
                offset, scale = scaling
                if np.isnan(scale[i]):
                    continue
                lo, hi = sorted(((c.min - offset[i]) * scale[i], (c.max - offset[i]) * scale[i]))
                std = std * abs(scale[i])
            absmax = max(abs(lo), abs(hi))
            if absmax >= WARN_ABS or std >= WARN_STD:
                rows.append({"column": name, "file": scanned.table.file, "min": c.min,
                             "max": c.max, "std": c.std or 0.0, "absmax": absmax,
                             "scaled_by_model": scaling is not None})
    if not rows:
        return
    rows.sort(key=lambda r: -r["absmax"])
    worst = rows[0]
    severe = worst["absmax"] >= ERROR_ABS
    listed = "; ".join(f"'{r['column']}' in [{num(r['min'])}, {num(r['max'])}], std {num(r['std'])}"
                       for r in rows[:6])
    more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
    consequence = ("squares and products of values this large overflow float32 (max 3.4e38) "
                   "in BatchNormalization's variance, in MSE and in the first gradients: NaN at "
                   "the first steps is typical" if severe else
                   "activations and first gradients are orders of magnitude too large: training "
                   "is unstable and diverges at ordinary learning rates")
    after = " after the model's own input scaling layer" if worst["scaled_by_model"] else ""
    yield Finding(
        cause="data-unscaled",
        severity=Severity.ERROR if severe else Severity.WARNING,
        confidence=0.75 if severe else 0.5,
        title=(f"{plural(len(rows), 'feature column')} unscaled: |value| up to "
               f"{num(worst['absmax'])} in '{worst['column']}'"),
        evidence=f"{listed}{more}{after}; {consequence}.",
        location=Location(kind="data", column=worst["column"], file=worst["file"]),
        fix=("Scale the features, fitted on the training rows only: sklearn's RobustScaler "
             "(outliers) or StandardScaler, or a keras.layers.Normalization layer adapted to the "
             "training data as the model's first layer. Drop columns that are identifiers or "
             "timestamps rather than features."),
        measured={"columns": rows},
        basis="static",  # predicted from column statistics; the layer pass confirms it
    )
