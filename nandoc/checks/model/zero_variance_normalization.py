"""zero-variance-normalization: a Normalization layer adapted on a column that was constant.

What Keras 3.15 does (keras/src/layers/preprocessing/normalization.py, measured):
`call` returns (x - mean) / maximum(sqrt(variance), backend.epsilon()), epsilon = 1e-7. With a
zero variance the divisor is 1e-7, so a value 1 away from the adapt-time constant comes out as
1e7. `adapt` rarely stores an exact 0, though: it accumulates float32 sums, and a constant
column leaves round-off behind. Measured on constant columns of 100 to 20,000 rows: exact 0
only for values like -2.5 or 1e6; otherwise variance 1e-16 to 2e-6 (0.1 -> 1.4e-13, 3.7 ->
2.9e-10, 17.3 -> 1.8e-6), a std 1e-7 to 2e-4 of |mean|, and multipliers 1e3 to 1e7. A variance
is therefore read as "zero" when it is <= 1e-12, or when its std is within round-off of the
mean (<= 1e-3 |mean|) and still scales a unit deviation by >= 100. Layers with invert=True
multiply by the std instead and cannot blow up; they are skipped.

Design: ONE check, needs=("model",), wants=("data",), so a layer is reported once per run.
Without data (or when the layer is not fed the raw features) it is a WARNING: the layer
multiplies any new value of the feature by up to 1e7. With data, the layer is called on the
training and validation features, and the finding becomes an ERROR when a zero-variance
feature comes out with |value| >= 1e3 (the data varies where the adapt data did not), naming
the rows; when the data is constant there too it stays a WARNING.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.core.evidence import num, plural, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.instrument.model_graph import fed_by_input, walk_layers, zero_features
from nandoc.loading.dataset import Dataset, Split

BLOWUP = 1e3  # |output| of a standardised feature this large means it is not standard at all
CHUNK = 65536


def _max_abs_out(layer: Any, split: Split, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per zero-variance feature, the largest finite |output| of the layer on this split, and
    the samples where any of them reaches BLOWUP."""
    import keras

    worst = np.zeros(idx.size)
    hit = []
    for start in range(0, split.n, CHUNK):
        out = keras.ops.convert_to_numpy(layer(split.x[start:start + CHUNK]))
        part = np.abs(out[..., idx]).reshape(out.shape[0], -1, idx.size)
        part = np.where(np.isfinite(part), part, 0.0)  # NaN cells are data-nonfinite's
        worst = np.maximum(worst, part.max(axis=(0, 1), initial=0.0))
        hit.append(start + np.flatnonzero(part.max(axis=(1, 2), initial=0.0) >= BLOWUP))
    return worst, np.concatenate(hit) if hit else np.zeros(0, int)


@check(id="zero-variance-normalization", needs=("model",), wants=("data",),
       causes=("zero-variance-normalization",))
def zero_variance_normalization(model: Any, data: Dataset | None = None) -> Iterator[Finding]:
    """A Normalization layer divides a feature by its zero variance: new values grow ~1e7-fold."""
    import keras

    for path, layer in walk_layers(model):
        if not isinstance(layer, keras.layers.Normalization) or layer.invert:
            continue
        if getattr(layer, "variance", None) is None:
            continue  # never built: nothing to divide by yet
        var = keras.ops.convert_to_numpy(layer.variance).astype(np.float64)
        mean = np.broadcast_to(keras.ops.convert_to_numpy(layer.mean), var.shape)
        width = var.shape[-1] if var.ndim and var.size == var.shape[-1] else None
        var, mean = var.reshape(-1), mean.reshape(-1)
        idx = zero_features(mean, var)
        if idx.size == 0:
            continue
        names = list(data.features) if data is not None and width == len(data.features) \
            else None
        features = [{"index": int(i), "name": names[i] if names else None,
                     "mean": float(mean[i]), "variance": float(var[i]),
                     "scale": float(1.0 / max(np.sqrt(var[i]), 1e-7))} for i in idx]
        worst_scale = max(f["scale"] for f in features)
        measured: dict[str, Any] = {"layer": path, "features": features, "epsilon": 1e-7}
        severity, confidence, observed, rows, where = Severity.WARNING, 0.6, "", None, ""
        usable = (data is not None and data.tabular and width is not None
                  and fed_by_input(model, path)
                  and data.train.x.shape[-1] == width)
        if usable:
            peak = 0.0
            for split in (s for s in (data.train, data.val) if s is not None and s.n):
                worst, hit = _max_abs_out(layer, split, idx)
                for f, w in zip(features, worst, strict=True):
                    f[f"{split.name}_max_abs"] = float(w)
                measured[f"{split.name}_max_abs"] = float(worst.max(initial=0.0))
                measured[f"{split.name}_blown_up_samples"] = int(hit.size)
                peak = max(peak, float(worst.max(initial=0.0)))
                if hit.size and split.name == "train" and data.window is None:
                    rows = tuple(int(r) for r in split.rows[hit[:20]])
                    where = f" ({rows_phrase(rows, int(hit.size))} of the {split.name} data)"
            features.sort(key=lambda f: -max(f.get("train_max_abs", 0.0),
                                             f.get("validation_max_abs", 0.0)))
            if peak >= BLOWUP:
                severity, confidence = Severity.ERROR, 0.9
                observed = (f" Called on the data, the layer outputs |value| up to {num(peak)} "
                            f"for them{where}: the data varies where the adapt data did not, "
                            f"and values this large overflow downstream.")
            else:
                observed = (f" Called on the data, these features stay within |value| "
                            f"{num(peak)}: they hardly move off the adapt-time constant there "
                            f"either, so training is unaffected until a new value arrives.")
        elif data is not None:
            observed = (" The layer is not fed the raw features, so nandoc did not call it on "
                        "the data.")
        label = ", ".join(f"'{f['name']}'" if f["name"] else f"#{f['index']}"
                          for f in features[:6])
        yield Finding(
            cause="zero-variance-normalization",
            severity=severity,
            confidence=confidence,
            title=(f"Normalization layer '{path}' has zero variance for "
                   f"{plural(len(features), 'feature')}: {label}"),
            evidence=(f"variance {', '.join(num(f['variance']) for f in features[:6])}: the "
                      f"column was constant when the layer was adapted. Keras 3 divides by "
                      f"max(sqrt(variance), 1e-7), so a value 1 away from the adapt-time mean "
                      f"comes out as up to {num(worst_scale)}.{observed}"),
            location=Location(kind="layer", layer=path, column=features[0]["name"], rows=rows),
            fix=("Drop the constant feature before training (it carries no information), or "
                 "adapt the Normalization layer on data where it varies."),
            measured=measured,
        )
