"""Pick the batches worth a pass: not only the first, but the extreme and the rare ones.

A NaN rarely comes from an average batch. Besides the first batch and one seeded random batch,
the samples with the largest |x| are the ones that overflow, and the samples of the rarest label
are the ones a skewed model predicts worst (its log-loss is largest there). Identical batches
are kept once. Numpy only: cheap next to a pass through the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nandoc.loading.dataset import Split

MAX_LABEL_VALUES = 20  # targets with at most this many distinct values look like classes


@dataclass(frozen=True, eq=False)
class Batch:
    """Samples of a split, with the file rows they come from."""

    name: str  # "first", "random", "extreme-values", "rare-label"
    indices: np.ndarray  # into the split
    x: np.ndarray
    y: np.ndarray
    rows: np.ndarray  # file rows (from 1) of each sample's label row
    why: str  # one phrase: what makes this batch interesting

    @property
    def n(self) -> int:
        return int(len(self.indices))


def _batch(split: Split, name: str, idx: np.ndarray, why: str) -> Batch:
    idx = np.asarray(idx, dtype=np.int64)
    return Batch(name, idx, split.x[idx], split.y[idx], np.asarray(split.rows)[idx], why)


def sample_max_abs(x: np.ndarray) -> np.ndarray:
    """max |value| per sample over features (and timesteps); NaN cells count as 0."""
    if x.shape[0] == 0:
        return np.zeros(0)
    a = np.abs(x.reshape(x.shape[0], -1).astype(np.float64))
    return np.where(np.isnan(a), 0.0, a).max(axis=1)


def _label_keys(y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(distinct label rows, per-sample label id) when y looks like classes, else None."""
    if y.shape[0] == 0:
        return None
    flat = y.reshape(y.shape[0], -1)
    ok = np.isfinite(flat).all(axis=1)
    if ok.sum() == 0:
        return None
    values, inverse = np.unique(flat[ok], axis=0, return_inverse=True)
    if not 2 <= len(values) <= MAX_LABEL_VALUES:
        return None
    ids = np.full(y.shape[0], -1)
    ids[ok] = inverse.reshape(-1)
    return values, ids


def select_batches(split: Split, batch_size: int, seed: int = 0) -> list[Batch]:
    """The first batch, a seeded random one, the most extreme values, the rarest label."""
    n = split.n
    if n == 0:
        return []
    size = max(1, min(int(batch_size), n))
    out = [_batch(split, "first", np.arange(size), f"the first {size} samples")]
    rng = np.random.default_rng(seed)
    out.append(_batch(split, "random", np.sort(rng.choice(n, size=size, replace=False)),
                      f"{size} samples drawn at random (seed {seed})"))
    score = sample_max_abs(split.x)
    top = np.sort(np.argsort(-score, kind="stable")[:size])
    out.append(_batch(split, "extreme-values", top,
                      f"the {size} samples with the largest |x| (up to {score.max():.3g})"))
    labels = _label_keys(split.y)
    if labels is not None:
        values, ids = labels
        counts = np.bincount(ids[ids >= 0], minlength=len(values))
        rare = int(np.argmin(np.where(counts > 0, counts, n + 1)))
        idx = np.flatnonzero(ids == rare)[:size]
        shown = values[rare]
        label = (f"{shown[0]:g}" if shown.size == 1
                 else "[" + ", ".join(f"{v:g}" for v in shown) + "]")
        out.append(_batch(split, "rare-label", idx,
                          f"samples of the rarest label {label} ({counts[rare]} of {n})"))
    unique: list[Batch] = []
    seen: set[tuple[int, ...]] = set()
    for b in out:
        key = tuple(sorted(int(i) for i in b.indices))
        if key not in seen:
            seen.add(key)
            unique.append(b)
    return unique


def epoch_batches(n: int, batch_size: int, shuffle: bool, seed: int, epoch: int
                  ) -> list[np.ndarray]:
    """The sample indices of each batch of `epoch`, as fit forms them (shuffled with a seed of
    the run and the epoch, so a resumed or repeated run sees the same batches)."""
    order = (np.random.default_rng([seed, epoch]).permutation(n) if shuffle
             else np.arange(n))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
