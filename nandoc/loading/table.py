"""Open a data file (CSV, parquet, npz) as a lazy polars frame in file order, and scan it.

The scan is one streaming pass computing, per column, what the data checks need: counts of
missing, unparsable, NaN and ±Inf cells with the first offending rows, and the range and spread
of the finite values. Rows count from 1 in file order, the header not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from nandoc.errors import DataError

ROW = "__nandoc_row__"
# Cells read as missing rather than as unparsable text (compared lower-cased, stripped).
NA_TOKENS = ["", "na", "n/a", "null", "none", "nil", "#n/a", "?"]
FIRST_ROWS = 10
FLOAT32_MAX = float(np.finfo(np.float32).max)

SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".npz": "npz"}


@dataclass(frozen=True)
class Table:
    path: Path
    kind: str  # csv | parquet | npz
    frame: pl.LazyFrame  # with a ROW column counting from 1
    columns: tuple[str, ...]
    string_columns: frozenset[str]  # columns read as text, parsed here
    header_lines: int  # lines before the first data row (1 for a CSV header)

    def lines_of(self, rows: list[int]) -> tuple[int, ...] | None:
        """Editor line numbers for data rows, for text files."""
        if self.kind != "csv":
            return None
        return tuple(r + self.header_lines for r in rows)


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


@dataclass(frozen=True)
class DataScan:
    path: Path
    n_rows: int
    columns: dict[str, ColumnScan] = field(default_factory=dict)


def _delimiter(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.readline(65536).decode("utf-8", errors="replace")
    if path.suffix.lower() == ".tsv" or ("\t" in head and "," not in head):
        return "\t"
    if ";" in head and "," not in head:
        return ";"
    return ","


def open_table(path: Path) -> Table:
    """Open `path` lazily; raises DataError with a clear paragraph on anything unreadable."""
    if not path.exists():
        raise DataError(f"The data file {path} does not exist. Check [data] path in nandoc.toml "
                        f"or the DATA argument.")
    if path.is_dir():
        raise DataError(f"The data path {path} is a folder; point it at a .csv, .parquet or "
                        f".npz file.")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"nandoc cannot read {path.name}: data files must end in .csv, "
                        f".parquet or .npz.")
    try:
        if kind == "csv":
            if path.stat().st_size == 0:
                raise DataError(f"The data file {path} is empty: it has no header and no rows.")
            frame = pl.scan_csv(path, infer_schema=False, separator=_delimiter(path))
            header_lines = 1
        elif kind == "parquet":
            frame = pl.scan_parquet(path)
            header_lines = 0
        else:
            frame = _npz_frame(path).lazy()
            header_lines = 0
        schema = frame.collect_schema()
    except DataError:
        raise
    except Exception as exc:  # polars/arrow raise many types for a malformed file
        raise DataError(f"The data file {path} could not be read as {kind.upper()}: "
                        f"{_first_line(exc)}. Check that the file is complete and in that "
                        f"format.") from None
    columns = tuple(schema.names())
    if not columns:
        raise DataError(f"The data file {path} has no columns.")
    strings = frozenset(n for n, t in schema.items() if t == pl.String)
    frame = frame.with_row_index(ROW, offset=1)
    return Table(path, kind, frame, columns, strings, header_lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _npz_frame(path: Path) -> pl.DataFrame:
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"The data file {path} is not a readable .npz archive: "
                        f"{_first_line(exc)}.") from None
    with arrays:
        named = {k: arrays[k] for k in arrays.files}
    cols: dict[str, np.ndarray] = {}
    for key, arr in named.items():
        if arr.ndim == 1:
            cols[key] = arr
        elif arr.ndim == 2:
            for i in range(arr.shape[1]):
                cols[f"{key}{i}"] = arr[:, i]
        else:
            raise DataError(
                f"In {path}, array '{key}' has {arr.ndim} dimensions. nandoc reads rows of "
                f"features: save it as 2-D (rows x features) and set [data.window] so nandoc "
                f"builds the windows itself."
            )
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise DataError(f"In {path}, the arrays have different lengths "
                        f"({', '.join(f'{k}: {len(v)}' for k, v in cols.items())}); every "
                        f"array must have one entry per row.")
    try:
        return pl.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})
    except (TypeError, ValueError) as exc:
        raise DataError(f"In {path}, an array is not numeric: {_first_line(exc)}.") from None


def parsed(table: Table, name: str) -> pl.Expr:
    """A column as Float64: text is parsed, what does not parse (or is an NA token) is null."""
    col = pl.col(name)
    if name in table.string_columns:
        text = col.str.strip_chars()
        return (pl.when(text.str.to_lowercase().is_in(NA_TOKENS)).then(None)
                .otherwise(text).cast(pl.Float64, strict=False))
    return col.cast(pl.Float64, strict=False)


def _missing(table: Table, name: str) -> pl.Expr:
    col = pl.col(name)
    if name in table.string_columns:
        return col.is_null() | col.str.strip_chars().str.to_lowercase().is_in(NA_TOKENS)
    return col.is_null()


def scan_table(table: Table) -> DataScan:
    """One streaming pass over every column; bounded memory whatever the file size."""
    exprs: list[pl.Expr] = [pl.len().alias("__n")]
    for i, name in enumerate(table.columns):
        f = parsed(table, name)
        missing = _missing(table, name)
        text = (~missing) & f.is_null()
        overflow = f.is_finite() & (f.abs() > FLOAT32_MAX)
        bad = missing | text | f.is_nan() | f.is_infinite() | overflow
        finite = f.filter(f.is_finite())
        p = f"c{i}_"
        exprs += [
            missing.sum().alias(p + "missing"),
            text.sum().alias(p + "text"),
            f.is_nan().sum().alias(p + "nan"),
            (f == float("inf")).sum().alias(p + "posinf"),
            (f == float("-inf")).sum().alias(p + "neginf"),
            overflow.sum().alias(p + "overflow32"),
            pl.col(ROW).filter(bad).head(FIRST_ROWS).implode().alias(p + "rows"),
            (pl.col(name).cast(pl.String).filter(text).head(3).implode().alias(p + "examples")),
            finite.count().alias(p + "finite"),
            finite.min().alias(p + "min"),
            finite.max().alias(p + "max"),
            finite.mean().alias(p + "mean"),
            finite.std().alias(p + "std"),
            finite.abs().max().alias(p + "absmax"),
        ]
    try:
        out = table.frame.select(exprs).collect(engine="streaming").row(0, named=True)
    except Exception as exc:
        raise DataError(f"The data file {table.path} could not be parsed: {_first_line(exc)}. "
                        f"Check for ragged rows, a wrong delimiter or a truncated file.") from None
    n = int(out["__n"])
    cols: dict[str, ColumnScan] = {}
    for i, name in enumerate(table.columns):
        p = f"c{i}_"

        def num(key: str) -> float | None:
            v = out[p + key]
            return None if v is None else float(v)

        cols[name] = ColumnScan(
            name=name, n_rows=n, n_missing=int(out[p + "missing"]), n_text=int(out[p + "text"]),
            n_nan=int(out[p + "nan"]), n_posinf=int(out[p + "posinf"]),
            n_neginf=int(out[p + "neginf"]), n_overflow32=int(out[p + "overflow32"]),
            bad_rows=tuple(int(r) for r in out[p + "rows"]),
            text_examples=tuple(str(s) for s in out[p + "examples"]),
            n_finite=int(out[p + "finite"]), min=num("min"), max=num("max"), mean=num("mean"),
            std=num("std"), absmax=num("absmax"),
        )
    return DataScan(path=table.path, n_rows=n, columns=cols)


def materialise(table: Table, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The named columns as a float64 (rows, len(columns)) array, NaN where a cell is bad,
    plus the row numbers."""
    exprs = [parsed(table, c).alias(c) for c in columns]
    try:
        df = table.frame.select([pl.col(ROW), *exprs]).collect(engine="streaming")
    except Exception as exc:
        raise DataError(f"The data file {table.path} could not be parsed: {_first_line(exc)}."
                        ) from None
    values = df.select(columns).to_numpy().astype(np.float64, copy=False) if columns else \
        np.empty((df.height, 0))
    # polars gives null as NaN in a float numpy array
    return values, df[ROW].to_numpy()
