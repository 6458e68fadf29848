"""Images fed as raw 0-255 pixels into a model that never rescales them.

Keras' image loaders (`image_dataset_from_directory`, `load_img`) give pixels in 0..255; a model
whose first layers do not rescale them (Rescaling(1/255), Normalization) sees inputs two orders
of magnitude larger than the ~1 its initialisers assume: the first activations and gradients are
as large, the first updates overshoot, and at ordinary learning rates the loss can diverge to
NaN. Warning: many such models still train, slowly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.analysis import remedies
from nandoc.core.evidence import num
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.fixes import Candidate
from nandoc.core.registry import check
from nandoc.instrument.model_graph import walk_layers
from nandoc.loading.dataset import Dataset
from nandoc.loading.named import Named
from nandoc.loading.table import ScannedFile

CHANNELS = (1, 3, 4)
RAW_MAX = 2.0  # pixels above this are not in [0, 1] or [-1, 1]
SCALERS = ("Rescaling", "Normalization", "BatchNormalization", "LayerNormalization")


def _image_inputs(data: Dataset) -> list[str]:
    """The features that are batches of images: (n, H, W, C) with C in 1, 3, 4."""
    x = data.train.x
    if isinstance(x, Named):
        arrays = x.arrays
    elif len(data.features) == 1:
        arrays = {data.features[0]: x}
    else:
        return []
    return [k for k, a in arrays.items()
            if np.ndim(a) == 4 and a.shape[-1] in CHANNELS and a.shape[1] > 1 and a.shape[2] > 1]


def _scaler_before_weights(model: Any) -> str | None:
    """The first rescaling layer, if one comes before the first layer with weights."""
    for path, layer in walk_layers(model):
        name = type(layer).__name__
        if name in SCALERS:
            return path
        if getattr(layer, "trainable_weights", None):
            return None
    return None


def fixes(finding: Finding) -> list[Candidate]:
    return [Candidate(finding.cause, "pixels scaled to [0, 1] (x / 255)", remedies.robust_scale)]


@check(id="data-unscaled-pixels", needs=("scan", "data", "model"), causes=("data-unscaled",),
       fixes=fixes)
def unscaled_pixels(scan: list[ScannedFile], data: Dataset, model: Any) -> Iterator[Finding]:
    """Raw 0-255 pixels into a model whose first layers do not rescale them."""
    images = _image_inputs(data)
    if not images or _scaler_before_weights(model) is not None:
        return
    for name in images:
        stats = [s.scan.columns[name] for s in scan if name in s.scan.columns]
        finite = [c for c in stats if c.n_finite and c.max is not None and c.min is not None]
        if not finite:
            continue
        lo = min(c.min for c in finite)
        hi = max(c.max for c in finite)
        if hi <= RAW_MAX or lo < -RAW_MAX:
            continue
        yield Finding(
            cause="data-unscaled", severity=Severity.WARNING, confidence=0.6,
            title=f"raw pixels in [{num(lo)}, {num(hi)}] feed '{name}' with no rescaling",
            evidence=(f"The images of '{name}' hold pixel values up to {num(hi)} and no "
                      f"Rescaling or Normalization layer comes before the first layer with "
                      f"weights: activations and first gradients are ~{num(hi)} times larger "
                      f"than the initialisers assume, so the first updates overshoot and "
                      f"training can diverge."),
            location=Location(kind="data", column=name, file=data.train.file),
            fix=("Add keras.layers.Rescaling(1/255) as the model's first layer (or divide the "
                 "pixels by 255 in the input pipeline)."),
            measured={"min": float(lo), "max": float(hi)}, basis="static")
