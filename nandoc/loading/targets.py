"""What the label checks need to know about a target column, gathered over every row.

For class-like targets (at most MAX_DISTINCT distinct values) every distinct value is kept with
its count and its first rows, so any domain test (binary, class ids below an output width,
integers) is exact without keeping the column. Beyond that, exact counts and first rows are
kept for the tests a loss can need before the model is known: negative values, values above 1,
non-integers; and the largest values with their rows (the earliest rows on ties), for class ids
at or above a width.

Speed: a batch that ColumnStats found clean (every value finite) comes with its min and max, so
no mask or copy is made, and the tests it cannot fail are skipped: no negative below a min of 0,
nothing above 1 below a max of 1, no non-integer when every value is a known whole class, no new
largest value at or below the current tenth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nandoc.loading.stats import FIRST_ROWS, Rows, top_k

MAX_DISTINCT = 1024


@dataclass(frozen=True)
class Hits:
    """Finite target values that fail a test: how many, the first rows, some of the values."""

    count: int
    rows: tuple[int, ...]
    values: tuple[float, ...]  # distinct offending values, sorted (a few)
    exact: bool = True  # False: count is a lower bound (a very wide continuous target)
    split: str = "train"  # whose file `rows` number: "validation" for a separate file
    elsewhere: int = 0  # more hits in the other file (the count includes them)


NO_HITS = Hits(0, (), ())


@dataclass(frozen=True)
class TargetStats:
    name: str
    n_finite: int
    distinct: dict[float, tuple[int, tuple[int, ...]]] | None  # value -> (count, first rows)
    negative: Hits = NO_HITS
    above_one: Hits = NO_HITS
    non_integer: Hits = NO_HITS
    largest: tuple[tuple[float, int], ...] = ()  # (value, row), largest first
    min: float | None = None
    max: float | None = None
    split: str = "train"  # whose file the rows number: "validation" for a separate file

    def hits(self, *, below: float | None = None, above: float | None = None,
             at_or_above: float | None = None, integer: bool = False) -> Hits:
        """Values < below, > above, >= at_or_above, or (integer) not whole numbers."""
        if self.distinct is not None:
            if not self.distinct:
                return NO_HITS
            vals = np.array(sorted(self.distinct))
            mask = np.zeros(len(vals), bool)
            if below is not None:
                mask |= vals < below
            if above is not None:
                mask |= vals > above
            if at_or_above is not None:
                mask |= vals >= at_or_above
            if integer:
                mask |= np.floor(vals) != vals
            bad = vals[mask].tolist()
            rows = sorted(r for v in bad for r in self.distinct[v][1])[:FIRST_ROWS]
            return Hits(sum(self.distinct[v][0] for v in bad), tuple(rows), tuple(bad[:20]))
        # A wide continuous target: only the tests counted during the scan are exact.
        if below not in (None, 0) or above not in (None, 1):
            raise ValueError("without distinct values, only below=0 and above=1 are known")
        named: dict[str, Hits] = {}
        if below is not None:
            named["negative"] = self.negative
        if above is not None:
            named["above_one"] = self.above_one
        if at_or_above is not None:
            named["largest"] = self._largest_hits(lambda v: v >= at_or_above)
        if integer:
            named["non_integer"] = self.non_integer
        named = {k: h for k, h in named.items() if h.count}
        if not named:
            return NO_HITS
        parts = list(named.values())
        rows = sorted({r for p in parts for r in p.rows})[:FIRST_ROWS]
        values = sorted({v for p in parts for v in p.values})[:20]
        # counts add up only over disjoint tests: v < 0 and v > 1 never share a value
        disjoint = len(named) == 1 or set(named) == {"negative", "above_one"}
        exact = disjoint and all(p.exact for p in parts)
        count = sum(p.count for p in parts) if disjoint else max(p.count for p in parts)
        return Hits(count, tuple(rows), tuple(values), exact)  # inexact: a lower bound

    def _largest_hits(self, test) -> Hits:
        found = [(v, r) for v, r in self.largest if test(v)]
        if not found:
            return NO_HITS
        exact = len(found) < len(self.largest) or len(self.largest) < FIRST_ROWS
        return Hits(len(found), tuple(sorted(r for _, r in found)),
                    tuple(sorted({v for v, _ in found})), exact)


@dataclass
class _HitsAcc:
    count: int = 0
    rows: list[int] = field(default_factory=list)
    values: set[float] = field(default_factory=set)

    def add(self, mask: np.ndarray, v: np.ndarray, rows: np.ndarray) -> None:
        n = int(mask.sum())
        if not n:
            return
        self.count += n
        if len(self.rows) < FIRST_ROWS:
            idx = np.flatnonzero(mask)[: FIRST_ROWS - len(self.rows)]
            self.rows += rows[idx].tolist()
        if len(self.values) < 20:
            self.values.update(np.unique(v[mask])[:20].tolist())

    def freeze(self) -> Hits:
        return Hits(self.count, tuple(self.rows), tuple(sorted(self.values)[:20]))


class TargetAccumulator:
    """Feed batches of one target column with their file rows; `result` gives TargetStats."""

    def __init__(self, name: str):
        self.name = name
        self.n_finite = 0
        self.distinct: dict[float, list] | None = {}
        self.known = np.empty(0)  # the distinct values so far, sorted
        self.negative, self.above_one, self.non_integer = _HitsAcc(), _HitsAcc(), _HitsAcc()
        self.top_v = np.empty(0)
        self.top_r = np.empty(0, np.int64)
        self.min, self.max = np.inf, -np.inf

    def add(self, values: np.ndarray, rows: Rows, clean: bool = False,
            lo: float | None = None, hi: float | None = None) -> None:
        """One batch of the column with the file row of each value. `clean`: every value is
        finite, and `lo`/`hi` are its min and max (from ColumnStats): no masks, no copies, and
        the tests the batch cannot fail are skipped."""
        if clean and lo is not None and hi is not None:
            v, r = values, rows
        else:
            ok = np.isfinite(values)
            v, r = (values, rows) if ok.all() else (values[ok], rows[ok])
            lo = hi = None
        if v.size == 0:
            return
        if lo is None or hi is None:
            lo, hi = float(v.min()), float(v.max())
        self.n_finite += int(v.size)
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        if lo < 0:
            self.negative.add(v < 0, v, r)
        if hi > 1:
            self.above_one.add(v > 1, v, r)
        if self.distinct is not None:
            self._distinct(v, r)
        # a batch of known classes holds a non-integer only when a known class is one
        if self.distinct is None or (np.floor(self.known) != self.known).any():
            self.non_integer.add(np.floor(v) != v, v, r)
        if self.top_v.size < FIRST_ROWS or hi > self.top_v[-1]:
            self._top(v, r)

    def _top(self, v: np.ndarray, r: Rows) -> None:
        k = FIRST_ROWS
        if v.size > k:
            if self.top_v.size >= k:  # only values above the current k-th can enter
                cand = np.flatnonzero(v > self.top_v[-1])
                if cand.size <= k:
                    v, r = v[cand], r[cand]
            if v.size > k:
                idx = top_k(v, k)
                v, r = v[idx], r[idx]
        else:
            r = r[np.arange(v.size)]
        allv = np.concatenate([self.top_v, v])
        allr = np.concatenate([self.top_r, r])
        order = np.lexsort((allr, -allv))[:k]  # largest first, earliest row on ties
        self.top_v, self.top_r = allv[order], allr[order]

    def _distinct(self, v: np.ndarray, r: Rows) -> None:
        assert self.distinct is not None
        known = self.known
        if known.size:
            # the common case, a batch of known classes: counted without sorting the batch
            counts = _counts_of_known(v, known)
            if counts is not None:
                for g in np.flatnonzero(counts):
                    self.distinct[float(known[g])][0] += int(counts[g])
                for g in np.flatnonzero((counts > 0) & self.open):
                    self._first_rows(float(known[g]), r[v == known[g]])
                return
        uniq, counts = np.unique(v, return_counts=True)
        new = [u for u in uniq.tolist() if u not in self.distinct]
        if len(self.distinct) + len(new) > MAX_DISTINCT:
            self.distinct = None
            return
        for u, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            entry = self.distinct.setdefault(u, [0, []])
            entry[0] += c
            if len(entry[1]) < FIRST_ROWS:
                self._first_rows(u, r[v == u])
        self.known = np.array(sorted(self.distinct))

    def _first_rows(self, value: float, rows: np.ndarray) -> None:
        assert self.distinct is not None
        have = self.distinct[value][1]
        if len(have) < FIRST_ROWS:
            have += rows[: FIRST_ROWS - len(have)].tolist()

    @property
    def open(self) -> np.ndarray:
        """Mask over `known`: values whose first rows are not all found yet."""
        assert self.distinct is not None
        return np.array([len(self.distinct[float(k)][1]) < FIRST_ROWS for k in self.known],
                        dtype=bool)

    def result(self) -> TargetStats:
        distinct = None if self.distinct is None else {
            k: (c, tuple(rows)) for k, (c, rows) in sorted(self.distinct.items())}
        return TargetStats(
            name=self.name, n_finite=self.n_finite, distinct=distinct,
            negative=self.negative.freeze(), above_one=self.above_one.freeze(),
            non_integer=self.non_integer.freeze(),
            largest=tuple(zip(self.top_v.tolist(), self.top_r.tolist(), strict=True)),
            min=self.min if self.n_finite else None, max=self.max if self.n_finite else None,
        )


def _counts_of_known(v: np.ndarray, known: np.ndarray) -> np.ndarray | None:
    """How often each of the sorted `known` values occurs in v; None when v holds others."""
    if known.size <= 8:  # a few classes: comparisons beat a binary search
        counts = np.array([np.count_nonzero(v == k) for k in known])
        return counts if counts.sum() == v.size else None
    idx = np.minimum(np.searchsorted(known, v), known.size - 1)
    if not (known[idx] == v).all():
        return None
    return np.bincount(idx, minlength=known.size)


def target_stats(name: str, values: np.ndarray, rows: np.ndarray) -> TargetStats:
    """TargetStats of one column given whole (the materialised labels of a small file)."""
    acc = TargetAccumulator(name)
    acc.add(np.asarray(values, dtype=np.float64), np.asarray(rows, dtype=np.int64))
    return acc.result()
