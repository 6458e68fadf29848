"""Rows in common: when a non-finite value is born on some rows of a batch and not on others,
what sets those rows apart (their label, their extreme values, all-zero or constant rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nandoc.core.evidence import num

MIN_ROWS = 1  # non-finite rows needed to say anything
LABEL_VALUES = 20  # a target with at most this many values in the batch reads as classes


@dataclass(frozen=True)
class Common:
    property: str  # "label", "extreme", "zero", "constant"
    sentence: str  # says it, for the evidence
    value: float | None = None


def rows_in_common(x: np.ndarray, y: np.ndarray, bad: np.ndarray) -> Common | None:
    """What every non-finite sample (`bad`, a boolean mask over the batch) shares and no
    finite sample does; None when nothing does, or when every sample is non-finite."""
    bad = np.asarray(bad, dtype=bool)
    if bad.sum() < MIN_ROWS or bad.all():
        return None
    good = ~bad
    yf = y.reshape(len(y), -1)
    if yf.shape[1] == 1 and len(np.unique(yf[np.isfinite(yf)])) <= LABEL_VALUES:
        labels = yf[:, 0]
        values = np.unique(labels[bad])
        if len(values) == 1 and not np.any(labels[good] == values[0]):
            return Common("label", f"every non-finite row has label {num(float(values[0]))}, "
                                   f"and no finite row does", float(values[0]))
    several = hasattr(y, "arrays") and len(y.arrays) > 1  # several outputs: not one-hot
    if yf.shape[1] > 1 and not several:  # one-hot: a row of zeros or of several ones
        sums = np.nansum(yf, axis=1)
        if np.all(sums[bad] == sums[bad][0]) and not np.any(sums[good] == sums[bad][0]):
            return Common("label", f"every non-finite row's one-hot target sums to "
                                   f"{num(float(sums[bad][0]))}, and no finite row's does",
                          float(sums[bad][0]))
    xf = np.nan_to_num(x.reshape(len(x), -1).astype(np.float64), nan=0.0, posinf=np.inf)
    size = np.abs(xf).max(axis=1)
    if np.all(size[bad] > size[good].max()) and size[bad].min() > 10 * max(size[good].max(),
                                                                           1e-12):
        return Common("extreme", f"the non-finite rows hold the batch's largest inputs (|x| "
                                 f">= {num(float(size[bad].min()))}, the others at most "
                                 f"{num(float(size[good].max()))})")
    if np.all(size[bad] == 0) and np.all(size[good] > 0):
        return Common("zero", "every non-finite row is all zeros, and no finite row is")
    if isinstance(x, np.ndarray) and x.ndim == 3:
        spread = np.nanstd(x.astype(np.float64), axis=1).max(axis=1)
        if np.all(spread[bad] == 0) and np.all(spread[good] > 0):
            return Common("constant", "every non-finite window is constant over time, and no "
                                      "finite window is")
    return None
