"""Per-column statistics accumulated batch by batch: bad-cell counts with their first rows, and
the range and spread of the finite values (Chan's parallel update, so batches merge exactly).

Numpy only; the scan in `table.py` feeds it. Speed: a batch column with no missing or text cell
whose sum is finite holds only finite numbers (a NaN or an inf makes the sum non-finite), so it
takes the fast path: its sum, min, max and sum of squares (M2 = sum(v^2) - n mean^2, exact
enough while the mean is small next to the spread; else the two-pass M2), BLOCK rows at a time
(the passes after the first find them in the cache), with no masks and no copies. Only the
other columns are searched cell by cell. Each batch leaves a `BatchSummary` (per column: clean
or not, finite min/max, any inf) that the row sample and the label statistics use to skip work
the batch cannot change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FIRST_ROWS = 10  # rows kept per column: the first cells that are missing, text, NaN or inf
EXAMPLES = 3  # unparsable cells quoted per column
FLOAT32_MAX = float(np.finfo(np.float32).max)
# sum(v^2) - n mean^2 loses about log2(sum(v^2) / M2) bits: beyond this ratio, two passes
FAST_M2_RATIO = 16.0
CHUNK = 4096  # a clean column's min and max are kept per chunk of rows (for the row sample)
BLOCK = 16 * CHUNK  # rows a clean column is read at a time (512 KiB of float64: in the cache)


class Consecutive:
    """The file rows start, start + 1, ... of a batch of `size` rows, indexed like the array
    np.arange(start, start + size) (positions, a boolean mask, a slice) without building it."""

    __slots__ = ("size", "start")

    def __init__(self, start: int, size: int):
        self.start, self.size = int(start), int(size)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return np.arange(self.size, dtype=np.int64)[idx] + self.start
        if isinstance(idx, (int, np.integer)):
            return self.start + (int(idx) if idx >= 0 else self.size + int(idx))
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return idx.astype(np.int64) + self.start

    def __len__(self) -> int:
        return self.size


Rows = np.ndarray | Consecutive


def top_k(v: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values of v (no NaN), the earliest positions on ties."""
    if v.size <= k:
        return np.arange(v.size)
    t = v[np.argpartition(-v, k - 1)[k - 1]]  # the k-th largest value
    above = np.flatnonzero(v > t)
    return np.concatenate([above, np.flatnonzero(v == t)[:k - above.size]])


@dataclass(frozen=True)
class BatchSummary:
    """What one batch held, per column: `clean` (every cell a finite number within float32's
    range: the fast path), `lo`/`hi` (min and max of its finite values; NaN when none), `inf`
    (any +-inf cell); for a clean column, the min and max of each CHUNK rows
    (`chunk_lo`/`chunk_hi`; None for the others)."""

    clean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    inf: np.ndarray
    chunk_lo: list[np.ndarray | None]
    chunk_hi: list[np.ndarray | None]

    def absmax(self, columns) -> float:
        """The largest |value| of these columns in the batch, NaN ignored, at least 0."""
        best = 0.0
        for j in columns:
            if self.inf[j]:
                return math.inf
            if self.lo[j] == self.lo[j]:  # not NaN: some finite value
                best = max(best, -float(self.lo[j]), float(self.hi[j]))
        return best


@dataclass(frozen=True)
class ColumnScan:
    name: str
    n_rows: int
    n_missing: int
    n_text: int
    n_nan: int
    n_posinf: int
    n_neginf: int
    n_overflow32: int  # finite here, but beyond float32's range: inf once fed to a model
    bad_rows: tuple[int, ...]  # first rows with a missing, unparsable, NaN or inf cell
    text_examples: tuple[str, ...]
    n_finite: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    absmax: float | None

    @property
    def n_bad(self) -> int:
        return (self.n_missing + self.n_text + self.n_nan + self.n_posinf + self.n_neginf
                + self.n_overflow32)

    @property
    def numeric(self) -> bool:
        """Mostly numbers: at least one finite value and no more text cells than numbers."""
        parsed = self.n_finite + self.n_nan + self.n_posinf + self.n_neginf
        return parsed > 0 and self.n_text <= parsed


def _chunked(v: np.ndarray, op: np.ufunc) -> np.ndarray:
    """op.reduce of each CHUNK values of v (the last chunk may be shorter)."""
    whole = v.size // CHUNK * CHUNK
    out = op.reduce(v[:whole].reshape(-1, CHUNK), axis=1)
    return np.append(out, op.reduce(v[whole:])) if whole < v.size else out


def _clean_sums(v: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray] | None:
    """(sum, sum of squares, min and max per CHUNK) of a column whose values are all finite and
    within float32's range; None otherwise. Read BLOCK rows at a time, so that the passes after
    the first find the block in the cache; a non-finite block sum (a NaN or an inf) ends it."""
    total = squares = 0.0
    los: list[np.ndarray] = []
    his: list[np.ndarray] = []
    for i in range(0, v.size, BLOCK):
        part = v[i:i + BLOCK]
        s = float(part.sum())
        if not math.isfinite(s):
            return None
        total += s
        squares += float(np.einsum("i,i->", part, part))  # not BLAS: its threads fight the reader
        los.append(_chunked(part, np.minimum))
        his.append(_chunked(part, np.maximum))
    clo = np.concatenate(los) if len(los) > 1 else los[0]
    chi = np.concatenate(his) if len(his) > 1 else his[0]
    if not (-FLOAT32_MAX <= clo.min() and chi.max() <= FLOAT32_MAX):
        return None
    return total, squares, clo, chi


class ColumnStats:
    """Running statistics of C columns. `add` takes one batch; `result` gives a ColumnScan each."""

    def __init__(self, names: tuple[str, ...]):
        c = len(names)
        self.names = names
        self.n = 0
        self.missing = np.zeros(c, np.int64)
        self.text = np.zeros(c, np.int64)
        self.nan = np.zeros(c, np.int64)
        self.posinf = np.zeros(c, np.int64)
        self.neginf = np.zeros(c, np.int64)
        self.overflow = np.zeros(c, np.int64)
        self.count = np.zeros(c, np.int64)
        self.min = np.full(c, np.inf)
        self.max = np.full(c, -np.inf)
        self.mean = np.zeros(c)
        self.m2 = np.zeros(c)
        self.rows: list[list[int]] = [[] for _ in names]
        self.examples: list[list[str]] = [[] for _ in names]

    def add(self, columns: list[np.ndarray], missing: list[np.ndarray | None],
            text: list[np.ndarray | None], rows: Rows,
            text_of: Callable[[int, np.ndarray], list[str]]) -> BatchSummary:
        """One batch, column by column: float64 values with NaN where a cell is missing or
        text; the masks of missing and text cells (None: none in this batch); `rows` the file
        row of each row. `text_of(j, idx)` returns the raw cells of column j at positions idx."""
        c = len(self.names)
        clean = np.zeros(c, bool)
        lo, hi, inf = np.full(c, np.nan), np.full(c, np.nan), np.zeros(c, bool)
        summary = BatchSummary(clean, lo, hi, inf, [None] * c, [None] * c)
        n = len(rows)
        if n == 0:
            return summary
        self.n += n
        with np.errstate(invalid="ignore", over="ignore"):
            for j, v in enumerate(columns):
                clean_sums = _clean_sums(v) if missing[j] is None and text[j] is None else None
                if clean_sums is not None:  # the common, clean case
                    total, squares, clo, chi = clean_sums
                    self._fast(j, v, n, total, squares, float(clo.min()), float(chi.max()))
                    clean[j], lo[j], hi[j] = True, clo.min(), chi.max()
                    summary.chunk_lo[j], summary.chunk_hi[j] = clo, chi
                else:
                    self._bad_cells(j, v, missing[j], text[j], rows, text_of, summary)
        return summary

    def _fast(self, j: int, v: np.ndarray, n: int, total: float, squares: float, lo: float,
              hi: float) -> None:
        mean = total / n
        m2 = squares - total * mean
        if not m2 * FAST_M2_RATIO >= squares:  # the mean dominates (or a constant): two passes
            d = v - mean
            m2 = float(np.einsum("i,i->", d, d))
        self._merge(j, n, mean, m2, lo, hi)

    def _bad_cells(self, j: int, v: np.ndarray, m: np.ndarray | None, t: np.ndarray | None,
                   rows: Rows, text_of: Callable[[int, np.ndarray], list[str]],
                   summary: BatchSummary) -> None:
        finite = np.isfinite(v)
        nan = np.isnan(v)
        if m is not None:
            nan &= ~m
            self.missing[j] += int(m.sum())
        if t is not None:
            nan &= ~t
            self.text[j] += int(t.sum())
        posinf, neginf = v == np.inf, v == -np.inf
        before = self.posinf[j] + self.neginf[j]
        over = finite & (np.abs(v) > FLOAT32_MAX)
        self.nan[j] += int(nan.sum())
        self.posinf[j] += int(posinf.sum())
        self.neginf[j] += int(neginf.sum())
        self.overflow[j] += int(over.sum())
        summary.inf[j] = self.posinf[j] + self.neginf[j] > before
        bad = nan | posinf | neginf | over
        if m is not None:
            bad |= m
        if t is not None:
            bad |= t
        need = FIRST_ROWS - len(self.rows[j])
        if need > 0:
            self.rows[j] += rows[np.flatnonzero(bad)[:need]].tolist()
        if t is not None and len(self.examples[j]) < EXAMPLES and t.any():
            for cell in text_of(j, np.flatnonzero(t)[:EXAMPLES * 20]):
                if cell not in self.examples[j] and len(self.examples[j]) < EXAMPLES:
                    self.examples[j].append(cell)  # distinct examples, first seen first
        fv = v[finite]
        if fv.size:
            summary.lo[j], summary.hi[j] = float(fv.min()), float(fv.max())
            bmean = float(fv.sum()) / fv.size
            d = fv - bmean
            self._merge(j, fv.size, bmean, float(np.einsum("i,i->", d, d)),
                        float(summary.lo[j]), float(summary.hi[j]))

    def _merge(self, j: int, cnt: int, bmean: float, bm2: float, lo: float, hi: float) -> None:
        """Chan's update of count, mean and M2 of column j with a batch's finite values."""
        with np.errstate(invalid="ignore", over="ignore"):
            self.min[j] = min(self.min[j], lo)
            self.max[j] = max(self.max[j], hi)
            total = int(self.count[j]) + cnt
            delta = bmean - self.mean[j]
            share = cnt / total
            self.mean[j] += delta * share
            self.m2[j] += bm2 + delta ** 2 * self.count[j] * share
        self.count[j] = total

    def drop_trailing(self, k: int) -> None:
        """Forget k blank lines at the very end of the file: they were read as rows whose
        every cell is missing."""
        if k <= 0:
            return
        k = min(k, self.n)
        self.n -= k
        self.missing -= k
        self.rows = [[r for r in rows if r <= self.n] for rows in self.rows]

    def result(self) -> dict[str, ColumnScan]:
        out: dict[str, ColumnScan] = {}
        for j, name in enumerate(self.names):
            cnt = int(self.count[j])

            def val(x: float, cnt: int = cnt) -> float | None:
                return float(x) if cnt else None

            std = None
            if cnt > 1:
                with np.errstate(invalid="ignore", over="ignore"):
                    std = float(np.sqrt(self.m2[j] / (cnt - 1)))
            lo, hi = val(self.min[j]), val(self.max[j])
            out[name] = ColumnScan(
                name=name, n_rows=self.n, n_missing=int(self.missing[j]),
                n_text=int(self.text[j]), n_nan=int(self.nan[j]), n_posinf=int(self.posinf[j]),
                n_neginf=int(self.neginf[j]), n_overflow32=int(self.overflow[j]),
                bad_rows=tuple(self.rows[j]), text_examples=tuple(self.examples[j]),
                n_finite=cnt, min=lo, max=hi, mean=val(self.mean[j]), std=std,
                absmax=max(abs(lo), abs(hi)) if lo is not None and hi is not None else None,
            )
        return out
