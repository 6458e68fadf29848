"""Per-column statistics accumulated batch by batch: bad-cell counts with their first rows, and
the range and spread of the finite values (Chan's parallel update, so batches merge exactly).

Numpy only, vectorised over every column of a batch at once; the scan in `table.py` feeds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FIRST_ROWS = 10  # rows kept per column: the first cells that are missing, text, NaN or inf
EXAMPLES = 3  # unparsable cells quoted per column
FLOAT32_MAX = float(np.finfo(np.float32).max)


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
            text: list[np.ndarray | None], rows: np.ndarray,
            text_of: Callable[[int, np.ndarray], list[str]]) -> None:
        """One batch, column by column: float64 values with NaN where a cell is missing or
        text; the masks of missing and text cells (None: none in this batch); `rows` the file
        row of each row. `text_of(j, idx)` returns the raw cells of column j at positions idx."""
        n = rows.size
        if n == 0:
            return
        self.n += n
        with np.errstate(invalid="ignore", over="ignore"):
            for j, v in enumerate(columns):
                lo, hi = v.min(), v.max()  # NaN when any value is NaN
                if (missing[j] is None and text[j] is None and -FLOAT32_MAX <= lo
                        and hi <= FLOAT32_MAX):
                    self._moments(j, v, n, float(lo), float(hi))  # the common, clean case
                else:
                    self._bad_cells(j, v, missing[j], text[j], rows, text_of)

    def _bad_cells(self, j: int, v: np.ndarray, m: np.ndarray | None, t: np.ndarray | None,
                   rows: np.ndarray, text_of: Callable[[int, np.ndarray], list[str]]) -> None:
        finite = np.isfinite(v)
        nan = np.isnan(v)
        if m is not None:
            nan &= ~m
            self.missing[j] += int(m.sum())
        if t is not None:
            nan &= ~t
            self.text[j] += int(t.sum())
        posinf, neginf = v == np.inf, v == -np.inf
        over = finite & (np.abs(v) > FLOAT32_MAX)
        self.nan[j] += int(nan.sum())
        self.posinf[j] += int(posinf.sum())
        self.neginf[j] += int(neginf.sum())
        self.overflow[j] += int(over.sum())
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
            self._moments(j, fv, fv.size, float(fv.min()), float(fv.max()))

    def _moments(self, j: int, v: np.ndarray, cnt: int, lo: float, hi: float) -> None:
        """Chan's update of count, mean and M2 of column j with the finite values `v`."""
        with np.errstate(invalid="ignore", over="ignore"):
            self.min[j] = min(self.min[j], lo)
            self.max[j] = max(self.max[j], hi)
            bmean = float(v.sum()) / cnt
            d = v - bmean
            bm2 = float(np.einsum("i,i->", d, d))  # not BLAS: its threads fight the reader's
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
