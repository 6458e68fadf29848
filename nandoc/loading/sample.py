"""The rows the model passes read, captured during the one streaming scan of the data file.

A small file is kept whole. A large one (more rows or bytes than the plan's limits) keeps a
bounded sample instead, chosen while the rows stream past so that no second pass is needed:

- the first rows (the first batch a training run sees),
- a seeded uniform random sample (each row gets a random key; the smallest keys win: only the
  keys of the rows that enter are drawn, see `RowCapture._random`),
- the rows with the largest |value| over the feature columns (the ones that overflow),
- the first rows of each label value while the target looks like classes (the rare labels),
- the last rows (the validation split is the tail of the file).

Each chosen row is captured with the `run - 1` rows before it (and `stride - 1` more), so a
window of `run` rows can still be cut ending on it. Rows keep their file numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nandoc.loading.stats import CHUNK, BatchSummary, Consecutive, Rows, top_k

KEEP_ALL_ROWS = 200_000
KEEP_ALL_BYTES = 64 * 2**20
SAMPLE_BYTES = 64 * 2**20  # the most a sample's captured rows may take (float32)
RARE_LABELS = 20  # targets with more distinct values than this are not treated as classes


@dataclass(frozen=True)
class SamplePlan:
    run: int = 1  # rows per window (1 for row-wise data)
    stride: int = 1
    per_group: int = 32  # samples per group: first, random, extreme values, each rare label
    seed: int = 0
    score_columns: tuple[int, ...] | None = None  # scored for extreme values (None: all)
    label_columns: tuple[int, ...] = ()
    keep_all_rows: int = KEEP_ALL_ROWS
    keep_all_bytes: int = KEEP_ALL_BYTES

    @property
    def span(self) -> int:
        return self.run + self.stride - 1

    def fitted(self, n_columns: int) -> SamplePlan:
        """The same plan with per_group lowered until the captured rows fit SAMPLE_BYTES."""
        k = max(1, self.per_group)
        while k > 1 and self.cost(k, n_columns) > SAMPLE_BYTES:
            k //= 2
        return SamplePlan(self.run, self.stride, k, self.seed, self.score_columns,
                          self.label_columns, self.keep_all_rows, self.keep_all_bytes)

    def cost(self, k: int, n_columns: int) -> int:
        edge = self.run + (k - 1) * self.stride
        anchors = k * (2 + (RARE_LABELS if self.label_columns else 0))
        return (2 * edge + self.stride + anchors * self.span) * max(n_columns, 1) * 4


@dataclass(frozen=True)
class RowSample:
    rows: np.ndarray  # int64, sorted, unique: file rows counting from 1
    values: np.ndarray  # float32 (len(rows), columns): NaN where a cell is bad
    complete: bool  # every row of the file
    run: int  # rows captured before each chosen row (windows up to this length can be cut)


def _all_known(values: np.ndarray, known: np.ndarray) -> bool:
    """Every value is one of the (sorted) known ones."""
    if known.size <= 8:  # a few classes: comparisons beat a binary search
        return sum(int(np.count_nonzero(values == k)) for k in known) == values.size
    idx = np.minimum(np.searchsorted(known, values), known.size - 1)
    return bool((known[idx] == values).all())


class RowCapture:
    """Feed every batch of parsed rows in file order; `result` gives the RowSample."""

    def __init__(self, plan: SamplePlan, n_columns: int):
        self.plan = plan.fitted(n_columns)
        self.c = n_columns
        k, p = self.plan.per_group, self.plan
        self.edge = p.run + (k - 1) * p.stride  # rows holding the first k windows
        # the last k windows end on the validation segment's stride grid, up to stride - 1
        # rows before the end of the file
        self.tail_n = self.edge + p.stride - 1
        self.n = 0
        self.full: list[np.ndarray] | None = []
        self.full_bytes = 0
        self.first: list[np.ndarray] = []
        self.first_n = 0
        self.tail = np.empty((0, n_columns), np.float32)
        self.carry = np.empty((0, n_columns), np.float32)  # the last span-1 rows seen
        self.runs: dict[int, np.ndarray] = {}  # anchor row -> rows ending on it
        self.rng = np.random.default_rng(p.seed)
        self.rand_key = np.empty(0)
        self.rand_row = np.empty(0, np.int64)
        self.next_random = 2**62  # the next row to enter the random sample (once k are in)
        self.ext_score = np.empty(0)
        self.ext_row = np.empty(0, np.int64)
        self.rare: dict[float, list[int]] | None = {} if p.label_columns else None
        self.rare_keys = np.empty(0)
        self.weights = np.random.default_rng(12345).uniform(1.0, 2.0, len(p.label_columns))

    @property
    def complete(self) -> bool:
        return self.full is not None

    def add(self, columns: list[np.ndarray], summary: BatchSummary | None = None) -> None:
        """One batch: the float64 values of the next rows of the file, column by column;
        `summary` (from ColumnStats.add on the same batch) lets it skip what cannot matter."""
        n = columns[0].shape[0] if columns else 0
        if n == 0:
            return

        def block(lo: int, hi: int) -> np.ndarray:  # rows lo..hi-1 of the batch, float32
            out = np.empty((max(0, hi - lo), self.c), np.float32)
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf
                for j, col in enumerate(columns):
                    out[:, j] = col[lo:hi]
            return out

        start = self.n + 1  # file row of the batch's first row
        self.n += n
        if self.full is not None:
            self.full_bytes += n * self.c * 4
            if self.n > self.plan.keep_all_rows or self.full_bytes > self.plan.keep_all_bytes:
                self.full = None
            else:
                self.full.append(block(0, n))
        if self.first_n < self.edge:
            take = block(0, min(n, self.edge - self.first_n))
            self.first.append(take)
            self.first_n += take.shape[0]
        self.tail = np.concatenate([self.tail, block(max(0, n - self.tail_n), n)]
                                   )[-self.tail_n:]
        rows = Consecutive(start, n)
        wanted = (self._random(rows) | self._extreme(columns, rows, summary)
                  | self._rare(columns, rows, summary))
        keep = self._needed()
        for anchor in [a for a in self.runs if a not in keep]:
            del self.runs[anchor]
        span = self.plan.span
        for anchor in sorted(wanted & keep):
            i = anchor - start  # in this batch
            if i - span + 1 >= 0:
                self.runs[anchor] = block(i - span + 1, i + 1)
            else:  # the run begins in earlier batches
                need = span - 1 - i
                self.runs[anchor] = np.concatenate([self.carry[self.carry.shape[0] - need:]
                                                    if need else self.carry[:0],
                                                    block(0, i + 1)])
        if span > 1:
            self.carry = np.concatenate([self.carry, block(max(0, n - span + 1), n)]
                                        )[-(span - 1):]

    def _random(self, rows: Rows) -> set[int]:
        """Bottom-k sampling: each row has a uniform random key, the k smallest keys win. Keys
        are drawn only for the rows that enter: the first k rows; after them, the gap to the
        next row whose key is below the k-th smallest so far (tau) is geometric(tau), and that
        row's key is uniform below tau (the same distribution as a key for every row, drawn in
        file order, so batch sizes do not change the sample)."""
        k = self.plan.per_group
        start = int(rows[0])
        end = start + len(rows)
        if self.rand_key.size < k:  # the first k rows all enter
            m = min(k - self.rand_key.size, end - start)
            keys = self.rng.random(m)
            allk = np.concatenate([self.rand_key, keys])
            allr = np.concatenate([self.rand_row, np.arange(start, start + m, dtype=np.int64)])
            order = np.lexsort((allr, allk))
            self.rand_key, self.rand_row = allk[order], allr[order]
            if self.rand_key.size == k:
                self.next_random = self._gap(start + m - 1)
        while self.next_random < end:
            row = self.next_random
            key = self.rng.random() * float(self.rand_key[-1])
            at = int(np.searchsorted(self.rand_key, key, side="right"))
            self.rand_key = np.insert(self.rand_key, at, key)[:k]
            self.rand_row = np.insert(self.rand_row, at, row)[:k]
            self.next_random = self._gap(row)
        return set(self.rand_row[self.rand_row >= start].tolist())

    def _gap(self, row: int) -> int:
        """The row after `row` whose key is the next to beat the k-th smallest key."""
        tau = float(self.rand_key[-1])
        if tau <= 0.0:
            return 2**62  # nothing can beat a zero key
        return row + int(self.rng.geometric(tau))

    def _extreme(self, columns: list[np.ndarray], rows: Rows,
                 summary: BatchSummary | None = None) -> set[int]:
        k = self.plan.per_group
        cols = range(len(columns)) if self.plan.score_columns is None \
            else self.plan.score_columns
        if not len(cols):
            return set()
        floor = self.ext_score[-1] if self.ext_score.size >= k else -1.0
        start = int(rows[0])
        if summary is not None and floor >= 0:
            # the batch's largest |value| is known: only rows with some |value| > floor count
            cand = self._over(columns, cols, summary, float(floor))
            if cand is None:
                return set()
            score = np.zeros(cand.size)
            with np.errstate(invalid="ignore"):
                for j in cols:  # NaN never wins (fmax)
                    np.fmax(score, np.abs(columns[j][cand]), out=score)
        else:
            score = np.zeros(len(rows))
            with np.errstate(invalid="ignore"):
                for j in cols:  # NaN never wins (fmax)
                    np.fmax(score, np.abs(columns[j]), out=score)
            cand = np.flatnonzero(score > floor)
            if cand.size == 0:
                return set()
            score = score[cand]
        rows = rows[cand]
        if score.size > k:
            idx = top_k(score, k)
            score, rows = score[idx], rows[idx]
        alls = np.concatenate([self.ext_score, score])
        allr = np.concatenate([self.ext_row, rows])
        order = np.lexsort((allr, -alls))[:k]  # largest first, earliest row on ties
        self.ext_score, self.ext_row = alls[order], allr[order]
        return set(self.ext_row[self.ext_row >= start].tolist())

    @staticmethod
    def _over(columns: list[np.ndarray], cols, summary: BatchSummary, floor: float
              ) -> np.ndarray | None:
        """Positions of the rows with some |value| > floor in `cols` (None: no such row); only
        the chunks whose min or max go past the floor are searched."""
        if summary.absmax(cols) <= floor:
            return None
        found: list[np.ndarray] = []
        with np.errstate(invalid="ignore"):
            for j in cols:
                if summary.absmax((j,)) <= floor:
                    continue
                v, lo, hi = columns[j], summary.chunk_lo[j], summary.chunk_hi[j]
                chunks = None if lo is None or hi is None else \
                    np.flatnonzero((hi > floor) | (lo < -floor))
                if chunks is None or chunks.size > 32:  # NaN compares as neither
                    found.append(np.flatnonzero((v > floor) | (v < -floor)))
                    continue
                for c in chunks.tolist():
                    part = v[c * CHUNK:(c + 1) * CHUNK]
                    found.append(np.flatnonzero((part > floor) | (part < -floor)) + c * CHUNK)
        cand = np.unique(np.concatenate(found)) if found else np.empty(0, np.int64)
        return cand if cand.size else None

    def _rare(self, columns: list[np.ndarray], rows: Rows,
              summary: BatchSummary | None = None) -> set[int]:
        if self.rare is None:
            return set()
        cols = self.plan.label_columns
        # one number per label row (a one-hot row too): a fixed random projection
        key = columns[cols[0]] if len(cols) == 1 else sum(
            columns[c] * w for c, w in zip(cols, self.weights, strict=True))
        if summary is None or not all(summary.clean[c] for c in cols):
            ok = np.isfinite(key)
            if not ok.all():
                key, rows = key[ok], rows[ok]
        okrows = rows
        known = self.rare_keys
        if known.size and _all_known(key, known):
            # every label of the batch is known: only groups still short of rows matter
            open_ = [g for g in range(known.size)
                     if len(self.rare[float(known[g])]) < self.plan.per_group]
            return self._rare_rows(open_, known, key, okrows)
        new = np.setdiff1d(np.unique(key), known)
        if len(known) + len(new) > RARE_LABELS:
            self.rare = None  # not classes: nothing is rare
            return set()
        for u in new.tolist():
            self.rare[u] = []
        self.rare_keys = np.array(sorted(self.rare))
        groups = np.flatnonzero(np.isin(self.rare_keys, np.unique(key)))
        return self._rare_rows(groups, self.rare_keys, key, okrows)

    def _rare_rows(self, groups, known: np.ndarray, key: np.ndarray, rows: Rows
                   ) -> set[int]:
        assert self.rare is not None
        got: set[int] = set()
        for g in groups:
            have = self.rare[float(known[g])]
            need = self.plan.per_group - len(have)
            if need > 0:
                new = rows[key == known[g]][:need].tolist()
                have += new
                got.update(new)
        return got

    def _needed(self) -> set[int]:
        keep = set(self.rand_row.tolist()) | set(self.ext_row.tolist())
        if self.rare is not None:
            keep.update(r for rows in self.rare.values() for r in rows)
        return keep

    def result(self, drop_last: int = 0) -> RowSample:
        """The sample; `drop_last` rows at the end of the file are left out (blank lines)."""
        n = self.n - drop_last
        if self.full is not None:
            values = (np.concatenate(self.full) if self.full else
                      np.empty((0, self.c), np.float32))[:n]
            return RowSample(np.arange(1, n + 1, dtype=np.int64), values, True, self.plan.run)
        pieces: dict[int, np.ndarray] = {}

        def put(first_row: int, block: np.ndarray) -> None:
            for i in range(block.shape[0]):
                pieces.setdefault(first_row + i, block[i])

        if self.first:
            put(1, np.concatenate(self.first))
        put(self.n - self.tail.shape[0] + 1, self.tail)
        for anchor, block in self.runs.items():
            put(anchor - block.shape[0] + 1, block)
        rows = np.array(sorted(r for r in pieces if r <= n), dtype=np.int64)
        values = (np.stack([pieces[int(r)] for r in rows]) if rows.size else
                  np.empty((0, self.c), np.float32))
        return RowSample(rows, values, False, self.plan.run)
