"""Several arrays that share their first axis: a model's named inputs, or its named outputs.

A single-input model is fed one numpy array, as always; a model with several inputs (or several
outputs) is fed a `Named`: model input name -> array, in the model's order. It slices like an
array (`named[idx]` selects samples of every array), counts samples with `len`, and reads as one
flat (n, width) float array wherever a check only needs per-sample values (`np.asarray(named)`,
`named.reshape(n, -1)`, `np.isfinite(named)`), so the checks that look at values need no
special case; the model gets `feed(x)`: the dict Keras matches to its inputs by name.

`ArrayStats` scans arrays of any rank (images, token ids, windows) chunk by chunk, with one
statistics column per array: a sample holding a bad cell counts once, named by its row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nandoc.loading.stats import FIRST_ROWS, FLOAT32_MAX, ColumnScan

CHUNK_CELLS = 1 << 22  # cells per array read at once by the scan (32 MiB of float64)


class Named:
    """Arrays by name, one row per sample in each (see the module docstring)."""

    __slots__ = ("arrays",)

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = dict(arrays)
        lengths = {int(a.shape[0]) for a in self.arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"arrays of different lengths: {lengths}")

    # -- as a mapping --------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.arrays)

    def items(self):
        return self.arrays.items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    # -- as an array of samples ----------------------------------------------------------
    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0]) if self.arrays else 0

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, str):
            return self.arrays[idx]
        return Named({k: v[idx] for k, v in self.arrays.items()})

    def flat(self, dtype: Any = np.float64) -> np.ndarray:
        n = len(self)
        return np.concatenate([np.asarray(v, dtype=dtype).reshape(n, -1)
                               for v in self.arrays.values()], axis=1)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.flat(dtype or np.float64)

    @property
    def shape(self) -> tuple[int, int]:
        n = len(self)
        return (n, sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in self.arrays.values()))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*[v.dtype for v in self.arrays.values()])

    def reshape(self, *shape: Any) -> np.ndarray:
        return self.flat().reshape(*shape)

    def astype(self, dtype: Any, copy: bool = True) -> Named:
        return Named({k: v.astype(dtype, copy=copy) for k, v in self.arrays.items()})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self.arrays.items())
        return f"Named({shapes})"


def feed(x: Any) -> Any:
    """What the model is called with: the dict of a Named, the array itself otherwise."""
    return dict(x.arrays) if isinstance(x, Named) else x


def n_samples(x: Any) -> int:
    return len(x) if isinstance(x, Named) else int(np.shape(x)[0])


class ArrayStats:
    """Per-sample statistics of named arrays of any rank, fed chunk by chunk.

    A sample whose cells include a NaN (inf, float32 overflow) counts once in n_nan (...), and
    its row is kept among the first bad rows; min/max/mean/std are over every finite cell.
    """

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.n = 0
        z = {k: 0 for k in ("nan", "posinf", "neginf", "over", "count")}
        self.counts = {name: dict(z) for name in names}
        self.lo = {name: np.inf for name in names}
        self.hi = {name: -np.inf for name in names}
        self.mean = {name: 0.0 for name in names}
        self.m2 = {name: 0.0 for name in names}
        self.rows: dict[str, list[int]] = {name: [] for name in names}

    def add(self, arrays: dict[str, np.ndarray], rows: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        self.n += n
        for name in self.names:
            v = np.asarray(arrays[name]).reshape(n, -1)
            step = max(1, CHUNK_CELLS // max(1, v.shape[1]))
            for lo in range(0, n, step):
                self._add(name, v[lo:lo + step].astype(np.float64, copy=False),
                          rows[lo:lo + step])

    def _add(self, name: str, v: np.ndarray, rows: np.ndarray) -> None:
        c = self.counts[name]
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(v)
            if not finite.all() or (v.size and np.abs(v).max() > FLOAT32_MAX):
                kinds = {"nan": np.isnan(v), "posinf": v == np.inf, "neginf": v == -np.inf,
                         "over": finite & (np.abs(v) > FLOAT32_MAX)}
                bad = np.zeros(len(rows), bool)
                for k, mask in kinds.items():
                    per = mask.any(axis=1)
                    c[k] += int(per.sum())
                    bad |= per
                need = FIRST_ROWS - len(self.rows[name])
                if need > 0:
                    self.rows[name] += [int(r) for r in rows[bad][:need]]
            fv = v[finite]
        if not fv.size:
            return
        cnt = int(fv.size)
        self.lo[name] = min(self.lo[name], float(fv.min()))
        self.hi[name] = max(self.hi[name], float(fv.max()))
        bmean = float(fv.sum()) / cnt
        d = fv - bmean
        bm2 = float(np.einsum("i,i->", d, d))
        total = c["count"] + cnt
        delta = bmean - self.mean[name]
        share = cnt / total
        self.mean[name] += delta * share
        self.m2[name] += bm2 + delta ** 2 * c["count"] * share
        c["count"] = total

    def result(self) -> dict[str, ColumnScan]:
        out = {}
        for name in self.names:
            c = self.counts[name]
            cnt = c["count"]
            lo = self.lo[name] if cnt else None
            hi = self.hi[name] if cnt else None
            std = float(np.sqrt(self.m2[name] / (cnt - 1))) if cnt > 1 else None
            out[name] = ColumnScan(
                name=name, n_rows=self.n, n_missing=0, n_text=0, n_nan=c["nan"],
                n_posinf=c["posinf"], n_neginf=c["neginf"], n_overflow32=c["over"],
                bad_rows=tuple(self.rows[name]), text_examples=(), n_finite=cnt, min=lo,
                max=hi, mean=self.mean[name] if cnt else None, std=std,
                absmax=max(abs(lo), abs(hi)) if lo is not None and hi is not None else None)
        return out


def feature_cells(x: Any, features: tuple[str, ...],
                  inputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
                  ) -> list[tuple[str, np.ndarray]]:
    """Per feature: its cells in each sample, (n, cells). A table's columns (rows or windows)
    are features one by one; an array that is not a table of them (an image, a sequence of ids)
    is one feature, named by its key."""
    n = n_samples(x)
    if isinstance(x, Named):
        mapping = dict(inputs)
        groups = [(mapping.get(name, (name,)), arr) for name, arr in x.items()]
    else:
        groups = [(features, np.asarray(x))]
    out: list[tuple[str, np.ndarray]] = []
    for cols, arr in groups:
        if len(cols) > 1 and arr.ndim >= 2 and arr.shape[-1] == len(cols):
            a = arr.reshape(n, -1, len(cols))
            out += [(c, a[:, :, j]) for j, c in enumerate(cols)]
        else:
            out.append((cols[0] if len(cols) == 1 else ", ".join(cols), arr.reshape(n, -1)))
    return out
