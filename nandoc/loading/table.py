"""Scan a data file (CSV, parquet, npz; opened by `tablefile.py`) in one streaming pass.

The pass reads the file in batches (polars' streaming CSV reader, so memory stays bounded
whatever the file size) and computes, per column, what the data checks need: counts of
missing, unparsable, NaN and ±Inf cells with the first offending rows, and the range and spread
of the finite values; per target column, what the label checks need (`targets.py`); and the
rows the model passes will read (`sample.py`: the whole file when it is small, a bounded sample
when it is not). Rows count from 1 in file order, the header not counted.

Speed: columns whose first rows are all numbers are parsed as Float64 by the reader itself
(several times faster than reading text and casting). When a later cell of such a column does
not parse, the scan starts again with that column read as text, so an unparsable cell is
counted and shown, never fatal. A large file is read one batch ahead by a second thread
(`readahead.py`) while the statistics of the last batch are computed; the statistics take a
fast path on batches without a bad cell (`stats.py`), and the row sample and the label
statistics skip what such a batch cannot change.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event

import numpy as np
import polars as pl

from nandoc.errors import DataError
from nandoc.loading.csvfile import csv_error, trailing_blank_lines
from nandoc.loading.frames import array_frame
from nandoc.loading.numbers import NumberFormat
from nandoc.loading.readahead import read_ahead
from nandoc.loading.sample import KEEP_ALL_BYTES, KEEP_ALL_ROWS, RowCapture, RowSample, SamplePlan
from nandoc.loading.shards import ShardMap, is_shard_set, open_shard_set
from nandoc.loading.stats import FIRST_ROWS, FLOAT32_MAX, ColumnScan, ColumnStats, Consecutive
from nandoc.loading.tablefile import NA_TOKENS, SUFFIXES, Table, numeric_dtype
from nandoc.loading.tablefile import POLARS_ERRORS as _POLARS_ERRORS
from nandoc.loading.tablefile import open_table as open_file
from nandoc.loading.targets import TargetAccumulator, TargetStats

__all__ = ["ROW", "ColumnScan", "DataScan", "FIRST_ROWS", "FLOAT32_MAX", "NA_TOKENS",
           "SUFFIXES", "ScanPlan", "ScanStopped", "ScannedFile", "Table", "open_table",
           "scan_table"]

# An optional column of a table's frame giving each row's number (in-memory arrays whose
# samples span several rows); files number their rows from 1 in order.
ROW = "__nandoc_row__"

BATCH_ROWS = 65536
MAX_RETRIES = 3  # columns switched to text one by one before every column is read as text
READ_AHEAD_BYTES = 32 * 2**20  # files larger than this are read by a second thread
# While a scan runs, a thread holding the GIL (TensorFlow's import) hands it over within this
# many seconds instead of Python's 5 ms: the scan releases the GIL around every numpy
# reduction and every batch read, and would wait up to the interval each time it takes it back.
SWITCH_INTERVAL = 0.0005
_switch = {"lock": threading.Lock(), "scans": 0, "before": 0.0}


@dataclass(frozen=True)
class DataScan:
    path: Path
    n_rows: int
    columns: dict[str, ColumnScan] = field(default_factory=dict)
    targets: dict[str, TargetStats] = field(default_factory=dict)  # per planned target column
    sample: RowSample | None = None  # the rows kept for the model passes
    shards: ShardMap | None = None  # a shard set: where each shard's rows begin


@dataclass(frozen=True)
class ScannedFile:
    """A data file as the checks read it: the table, its scan, and its role in the run."""

    table: Table
    scan: DataScan
    role: str  # "data" or "validation"


@dataclass(frozen=True)
class ScanPlan:
    """What the scan should gather besides column statistics (see `sample.py`)."""

    targets: tuple[str, ...] = ()  # columns that get label statistics and rare-label rows
    features: tuple[str, ...] | None = None  # scored for extreme rows (None: all but targets)
    run: int = 1  # window length the sample must allow (1: row-wise data)
    stride: int = 1
    per_group: int = 32
    seed: int = 0
    keep_all_rows: int = KEEP_ALL_ROWS
    keep_all_bytes: int = KEEP_ALL_BYTES


def open_table(path: Path) -> Table:
    """Open a data file, or a glob or folder of CSV or parquet shards as one table
    (`shards.py`); raises DataError with a clear paragraph on anything unreadable."""
    if is_shard_set(path):
        return open_shard_set(path)
    return open_file(path)


def array_table(columns: dict[str, np.ndarray], rows: np.ndarray, name: str) -> Table:
    """In-memory arrays as a table (one 1-D array per column), scanned like a file: `rows`
    numbers each row (several rows may share a number: the timesteps of one window); `name`
    is shown where a file's name would be."""
    frame = array_frame(columns, rows, ROW)
    return Table(Path(name), "arrays", frame.lazy(), tuple(columns), frozenset(), 0, ",",
                 int(frame.estimated_size()))


# --- the streaming pass ------------------------------------------------------------------------

class ScanStopped(Exception):
    """The caller asked the scan to stop (an error elsewhere, or Ctrl-C)."""


class _TypedCellFailed(Exception):
    def __init__(self, column: str | None):
        self.column = column


def _frames(table: Table, text: frozenset[str]) -> Iterator[pl.DataFrame]:
    if table.frame is not None:
        yield from table.frame.collect().iter_slices(BATCH_ROWS)
    elif table.kind == "csv":
        raw = table.reader_columns
        if table.has_header:
            numbers = {r: pl.Float64 for r, c in zip(raw, table.columns, strict=True)
                       if c not in text}
            frame = pl.scan_csv(table.read_path, separator=table.separator, infer_schema=False,
                                schema_overrides=numbers, encoding="utf8-lossy",
                                null_values=list(table.null_values) or None,
                                skip_lines=table.skip_lines)
        else:  # the names came from a comment line
            schema = {c: pl.String if c in text else pl.Float64 for c in table.columns}
            frame = pl.scan_csv(table.read_path, separator=table.separator, has_header=False,
                                schema=schema, encoding="utf8-lossy",
                                null_values=list(table.null_values) or None,
                                skip_lines=table.skip_lines)
        yield from frame.collect_batches()
    else:
        yield from pl.scan_parquet(table.read_path).collect_batches()


def _parse(s: pl.Series, fmt: NumberFormat | None = None
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(values as float64 with NaN where missing or text, missing mask, text mask); a mask is
    None when no cell of the batch is missing (or text). `fmt`: how the column spells its
    numbers when not plainly (decimal commas, thousands separators)."""
    if numeric_dtype(s.dtype):
        values = s.cast(pl.Float64).to_numpy()  # a view when there is no null
        return values, (s.is_null().to_numpy() if s.null_count() else None), None
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        na = text.is_null() | text.str.to_lowercase().is_in(NA_TOKENS)
        parsed = (fmt.normalise(text) if fmt is not None else text).cast(pl.Float64,
                                                                         strict=False)
        unparsed = parsed.is_null() & ~na
        return (parsed.to_numpy().astype(np.float64, copy=False),
                na.to_numpy() if na.any() else None,
                unparsed.to_numpy() if unparsed.any() else None)
    missing = s.is_null().to_numpy()  # dates, lists, bytes...: present, but not numbers
    return np.full(len(s), np.nan), missing, ~missing


def _trailing_blank(missing: list[np.ndarray | None], trailing: int, n: int) -> int:
    """Rows at the end of the stream so far whose every cell is missing (blank lines)."""
    if any(m is None for m in missing):
        return 0
    blank = np.logical_and.reduce(missing)
    if blank.all():
        return trailing + n
    return int(n - 1 - np.flatnonzero(~blank)[-1])


def _reading(table: Table, text: frozenset[str]) -> Iterator[pl.DataFrame]:
    """The batches of the file; a reader error becomes a DataError paragraph, or
    _TypedCellFailed when a cell of a column read as numbers is not a number."""
    frames = _frames(table, text)
    while True:
        try:
            df = next(frames)
        except StopIteration:
            return
        except _POLARS_ERRORS as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            cell = re.search(r"could not parse .* at column '(.*)' \(column number (\d+)\)",
                             str(exc))
            if cell:
                number = int(cell.group(2)) - 1
                columns = table.columns
                raise _TypedCellFailed(columns[number] if 0 <= number < len(columns) else None) \
                    from None
            if table.kind == "csv" and "more fields" not in str(exc) and \
                    not text.issuperset(table.columns):
                raise _TypedCellFailed(None) from None  # unsure why: try it all as text
            raise DataError(_parse_error(table, exc)) from None
        yield df


def _plan_sample(table: Table, plan: ScanPlan) -> SamplePlan:
    index = {c: i for i, c in enumerate(table.columns)}
    labels = tuple(index[t] for t in plan.targets if t in index)
    if plan.features is not None:
        score = tuple(index[f] for f in plan.features if f in index)
    else:
        score = tuple(i for c, i in index.items() if c not in plan.targets)
    return SamplePlan(run=max(1, plan.run), stride=max(1, plan.stride),
                      per_group=max(1, min(plan.per_group, 1024)), seed=plan.seed,
                      score_columns=score, label_columns=labels,
                      keep_all_rows=plan.keep_all_rows, keep_all_bytes=plan.keep_all_bytes)


def _scan_once(table: Table, plan: ScanPlan, text: frozenset[str], stop: Event | None
               ) -> DataScan:
    columns = table.columns
    stats = ColumnStats(columns)
    targets = {j: TargetAccumulator(c) for j, c in enumerate(columns) if c in plan.targets}
    capture = RowCapture(_plan_sample(table, plan), len(columns))
    parts = table.shards or (table,)
    formats = [table.number_format(c) for c in columns]
    first_row, trailing, numbered = 1, 0, False
    starts: list[int] = []
    batches = _batches(parts, text)
    if table.frame is None and table.size_bytes > READ_AHEAD_BYTES:
        batches = read_ahead(batches)
    with closing(batches):  # a stop or an error ends the reading thread too
        for i, df in batches:
            if i >= len(starts):  # the next shard begins (an empty one yields no batch)
                starts += [first_row] * (i + 1 - len(starts))
                formats = [parts[i].number_format(c) or table.number_format(c) for c in columns]
            if stop is not None and stop.is_set():
                raise ScanStopped()
            n = df.height
            if n == 0:
                continue
            rows: np.ndarray | Consecutive
            if ROW in df.columns:  # rows numbered by the caller: nothing to sample
                rows = df.get_column(ROW).cast(pl.Int64).to_numpy()
                df, numbered = df.drop(ROW), True
            else:
                rows = Consecutive(first_row, n)
            values: list[np.ndarray] = []
            missing: list[np.ndarray | None] = []
            unparsed: list[np.ndarray | None] = []
            for j in range(len(columns)):
                v, m, t = _parse(df.to_series(j), formats[j])
                values.append(v)
                missing.append(m)
                unparsed.append(t)

            def text_of(j: int, idx: np.ndarray, df: pl.DataFrame = df) -> list[str]:
                return [str(x) for x in df.to_series(j).gather(idx).to_list()]

            summary = stats.add(values, missing, unparsed, rows, text_of)
            for j, acc in targets.items():
                acc.add(values[j], rows, bool(summary.clean[j]), float(summary.lo[j]),
                        float(summary.hi[j]))
            if not numbered:
                capture.add(values, summary)
            trailing = _trailing_blank(missing, trailing, n)
            first_row += n
    drop = min(trailing, trailing_blank_lines(parts[-1].read_path)) \
        if table.kind == "csv" else 0
    stats.drop_trailing(drop)
    shards = None
    if table.shards:
        starts += [first_row] * (len(parts) - len(starts))  # shards with no rows
        ends = [*starts[1:], first_row - drop]
        shards = ShardMap(tuple(t.path.name for t in parts), tuple(starts),
                          tuple(max(0, e - b) for b, e in zip(starts, ends, strict=True)))
    return DataScan(path=table.path, n_rows=first_row - 1 - drop, columns=stats.result(),
                    targets={acc.name: acc.result() for acc in targets.values()},
                    sample=None if numbered else capture.result(drop), shards=shards)


def _batches(parts: tuple[Table, ...], text: frozenset[str]
             ) -> Iterator[tuple[int, pl.DataFrame]]:
    """(shard index, batch) for every batch of every shard, one shard at a time."""
    for i, part in enumerate(parts):
        for df in _reading(part, text):
            yield i, df


def _parse_error(table: Table, exc: BaseException) -> str:
    return csv_error(table.path, table.read_path, table.kind, table.separator,
                     len(table.columns), exc, table.skip_lines, table.has_header)


@contextmanager
def _prompt_gil() -> Iterator[None]:
    """Python's switch interval at most SWITCH_INTERVAL while any scan runs (restored after
    the last one ends)."""
    with _switch["lock"]:
        if _switch["scans"] == 0:
            _switch["before"] = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch["before"], SWITCH_INTERVAL))
        _switch["scans"] += 1
    try:
        yield
    finally:
        with _switch["lock"]:
            _switch["scans"] -= 1
            if _switch["scans"] == 0:
                sys.setswitchinterval(_switch["before"])


def scan_table(table: Table, plan: ScanPlan | None = None, stop: Event | None = None
               ) -> DataScan:
    """One streaming pass over every column; bounded memory whatever the file size.
    `stop`, when set from another thread, ends the pass early with ScanStopped."""
    with _prompt_gil():
        return _scan(table, plan or ScanPlan(), stop)


def _scan(table: Table, plan: ScanPlan, stop: Event | None) -> DataScan:
    text = set(table.string_columns)
    for _ in range(MAX_RETRIES + 1):
        try:
            return _scan_once(table, plan, frozenset(text), stop)
        except _TypedCellFailed as failed:
            if failed.column is None or failed.column in text:
                break
            text.add(failed.column)
    try:
        return _scan_once(table, plan, frozenset(table.columns), stop)
    except _TypedCellFailed:  # cannot happen when every column is text
        raise DataError(f"The data file {table.path} could not be parsed.") from None
