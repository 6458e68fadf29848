"""Open a data file (CSV, parquet, npz): its kind, its columns, how to read it.

The suffix is matched case-insensitively (data.CSV, data.Csv.GZ); gzip (and zstd) data files are
decompressed and non-UTF-8 CSVs transcoded to a temporary copy first (`encoding.py`); header
names are stripped of surrounding spaces; numbers written with decimal commas or thousands
separators are recognised per column (`numbers.py`).

Comment lines: '#' lines before the header are skipped (when the first line after them is
already data, the last one holds the header, as np.savetxt writes it). They are not rows: rows
still count data rows from 1, the header not counted; `lines` (editor line numbers) count them.
A '#' line after the header is read as a row like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from polars.exceptions import PanicException

from nandoc.errors import DataError
from nandoc.loading import encoding
from nandoc.loading.csvfile import Layout, csv_error, sniff
from nandoc.loading.frames import first_line, npz_frame
from nandoc.loading.numbers import Ambiguous, NumberFormat, classify

# Cells read as missing rather than as unparsable text (compared lower-cased, stripped).
NA_TOKENS = ["", "na", "n/a", "null", "none", "nil", "#n/a", "?"]
SNIFF_ROWS = 1000

SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".npz": "npz"}
POLARS_ERRORS = (Exception, PanicException)  # a pyo3 panic is a BaseException


@dataclass(frozen=True)
class Table:
    path: Path  # the user's file: every message names it
    kind: str  # csv | parquet | npz | arrays
    frame: pl.LazyFrame | None  # in-memory data (npz, arrays); None: read from `path`
    columns: tuple[str, ...]  # header names, stripped of surrounding spaces
    string_columns: frozenset[str]  # read as text and parsed by nandoc (not all numbers)
    header_lines: int  # lines before the first data row (1 for a CSV header)
    separator: str = ","
    size_bytes: int = 0
    # NA spellings seen in the first rows, read as missing by the CSV reader itself (each
    # spelling it checks costs time on every cell, so only these; another spelling later in
    # a numeric column sends that column down the text path, where every NA token is known)
    null_values: tuple[str, ...] = ()
    source: Path | None = None  # the file parsed when not `path`: a UTF-8 temporary copy
    raw_columns: tuple[str, ...] | None = None  # the header names as the reader sees them
    skip_lines: int = 0  # comment lines (and blank lines among them) before the header
    comment_lines: int = 0  # the '#' lines skipped
    has_header: bool = True  # False: the names came from the last comment line
    number_formats: tuple[tuple[str, NumberFormat], ...] = ()  # column -> its spelling
    notes: tuple[str, ...] = ()  # how the file was read, when not plainly
    column_types: tuple[tuple[str, str], ...] = ()  # non-numeric parquet columns' types
    shards: tuple[Table, ...] = ()  # a glob or folder of shards (`shards.py`): each one's table

    @property
    def file(self) -> str | None:
        """The file name findings locate rows in; None for in-memory arrays."""
        return None if self.kind == "arrays" else self.path.name

    @property
    def read_path(self) -> Path:
        """The file the parser reads (the user's file, or its UTF-8 copy)."""
        return self.source or self.path

    @property
    def reader_columns(self) -> tuple[str, ...]:
        return self.raw_columns or self.columns

    def number_format(self, column: str) -> NumberFormat | None:
        return next((f for c, f in self.number_formats if c == column), None)

    def lines_of(self, rows: list[int]) -> tuple[int, ...] | None:
        """Editor line numbers for data rows, for text files."""
        if self.kind != "csv":
            return None
        return tuple(r + self.header_lines for r in rows)


def data_kind(path: Path) -> tuple[str | None, str | None]:
    """(csv | parquet | npz or None, the compression suffix or None), by the file's name."""
    suffix, compressed = encoding.split_suffix(path)
    kind = SUFFIXES.get(suffix)
    if kind is None and compressed is not None and compressed != ".zip":
        kind = "csv"  # data.gz: a compressed CSV most likely
    return kind, compressed


def _check_path(path: Path) -> tuple[str, str | None]:
    if not path.exists():
        raise DataError(f"The data file {path} does not exist. Check [data] path in nandoc.toml "
                        f"or the DATA argument.")
    if path.is_dir():
        raise DataError(f"The data path {path} is a folder; point it at a .csv, .parquet or "
                        f".npz file, or at an image folder (one subfolder per class, the images "
                        f"inside).")
    kind, compressed = data_kind(path)
    if compressed == ".zip" and kind != "npz":
        raise encoding.refuse_compressed(path, ".zip")
    if kind is None:
        raise DataError(f"nandoc cannot read {path.name}: data files must end in .csv, .tsv, "
                        f".parquet or .npz (gzip-compressed .csv.gz too).")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise DataError(f"The data file {path} could not be read ({exc.strerror or exc}). "
                        f"Check its permissions.") from None
    return kind, compressed


def _unpacked(path: Path, kind: str, compressed: str | None) -> tuple[Path, str | None]:
    """(the file to read, its compression): a compressed file is decompressed to a temporary
    copy, whatever its suffix says, when its first bytes say gzip (or zstd)."""
    magic = encoding.magic_compression(path)
    if kind == "npz" and compressed is None:
        return path, None  # an .npz archive is a zip file
    if magic is None:
        return path, None  # named .gz but plain: read as it is
    if magic == ".gz" or (magic == ".zst" and encoding.zstd_available()):
        fmt = encoding.COMPRESSED[magic][0]
        inner = encoding.split_suffix(path)[0] if compressed else path.suffix.lower()
        return encoding.decompress(path, fmt, inner), fmt
    raise encoding.refuse_compressed(path, magic)


def open_table(path: Path) -> Table:
    """Open `path`; raises DataError with a clear paragraph on anything unreadable (a shard
    set opens through `table.open_table`)."""
    kind, compressed = _check_path(path)
    read, compression = _unpacked(path, kind, compressed)
    try:
        table = _open(path, read, kind, compression)
    except BaseException:
        encoding.release(read)
        raise
    return table


def _open(path: Path, read: Path, kind: str, compression: str | None) -> Table:
    size = read.stat().st_size
    layout = None
    shown = encoding.Prepared(read, compression).notes
    try:
        if kind == "csv":
            if size == 0:
                raise DataError(f"The data file {path} is empty: it has no header and no rows. "
                                f"Write the column names on the first line, then one row per "
                                f"line.")
            source, enc = encoding.prepare_text(path, read, encoding.split_suffix(path)[0])
            shown = encoding.Prepared(source, compression, enc).notes
            try:
                layout = sniff(source, path)
                return _open_csv(path, source, layout, size, shown)
            except BaseException:
                if source != read:
                    encoding.release(source)
                raise
        if kind == "parquet":
            schema = pl.scan_parquet(read).collect_schema()
            raw = tuple(schema.names())
            text = frozenset(n.strip() for n, t in schema.items() if not numeric_dtype(t))
            types = tuple((n.strip(), str(t)) for n, t in schema.items()
                          if not numeric_dtype(t))
            columns = _names(path, raw)
            if not columns:
                raise DataError(f"The data file {path} has no columns.")
            return Table(path, kind, None, columns, text, 0, ",", size,
                         source=None if read == path else read,
                         raw_columns=raw if raw != columns else None, notes=shown,
                         column_types=types)
        memory = npz_frame(read)
        columns = tuple(memory.columns)
        if not columns:
            raise DataError(f"The data file {path} has no columns.")
        return Table(path, kind, memory.lazy(), columns, frozenset(), 0, ",", size,
                     notes=shown)
    except DataError:
        raise
    except POLARS_ERRORS as exc:  # polars/arrow raise many types for a malformed file
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if layout is not None:
            raise DataError(csv_error(path, read, kind, layout.separator,
                                      layout.header_fields, exc, layout.skip_lines)) from None
        raise DataError(f"The data file {path} could not be read as {kind.upper()}: "
                        f"{first_line(exc)}. Check that the file is complete and in that "
                        f"format.") from None


def read_head(table: Table, n_rows: int = SNIFF_ROWS) -> pl.DataFrame:
    """The first rows of a CSV table as text, with the table's (stripped) column names."""
    names = list(table.columns) if not table.has_header else None
    head = pl.read_csv(table.read_path, separator=table.separator, infer_schema=False,
                       n_rows=n_rows, encoding="utf8-lossy", skip_lines=table.skip_lines,
                       has_header=table.has_header, new_columns=names)
    return head.rename(dict(zip(head.columns, table.columns, strict=True)))


def _open_csv(path: Path, source: Path, layout: Layout, size: int,
              notes: tuple[str, ...]) -> Table:
    names = layout.comment_header
    head = pl.read_csv(source, separator=layout.separator, infer_schema=False,
                       n_rows=SNIFF_ROWS, encoding="utf8-lossy", skip_lines=layout.skip_lines,
                       has_header=names is None, new_columns=list(names) if names else None)
    raw = tuple(head.columns)
    columns = _names(path, raw)
    if not columns:
        raise DataError(f"The data file {path} has no columns.")
    cols = head.get_columns()
    text = frozenset(c for c, s in zip(columns, cols, strict=True) if not _all_numbers(s))
    formats = []
    for c, s in zip(columns, cols, strict=True):
        if c in text:
            found = classify(_cells(s))
            if isinstance(found, Ambiguous):
                raise DataError(_ambiguous(path, c, found.example, layout.separator))
            if found is not None:
                formats.append((c, found))
    notes = (*notes, *(f"column '{c}' read with {f.describe()}" for c, f in formats))
    if layout.comment_lines:
        notes = (*notes, f"{layout.comment_lines} comment line(s) starting with '#' before "
                         f"the header skipped")
    header_lines = layout.skip_lines + (0 if names else 1)
    return Table(path, "csv", None, columns, text, header_lines, layout.separator, size,
                 _na_spellings(head), source=None if source == path else source,
                 raw_columns=raw if raw != columns else None, skip_lines=layout.skip_lines,
                 comment_lines=layout.comment_lines, has_header=names is None,
                 number_formats=tuple(formats), notes=notes)


def _ambiguous(path: Path, column: str, example: str, sep: str) -> str:
    sep_arg = "" if sep == "," else f", sep={sep!r}"
    return (f"Column '{column}' of {path} holds numbers written like '{example}', and nandoc "
            f"cannot tell whether ',' is the decimal mark ({example.replace(',', '.')}) or "
            f"separates thousands ({example.replace(',', '')}). Save the file with '.' as the "
            f"decimal mark and no thousands separators, e.g. with pandas: df = "
            f"pd.read_csv('{path.name}'{sep_arg}, decimal=',') if ',' is the decimal mark (or "
            f"thousands=',' if it separates thousands), then df.to_csv('{path.stem}-clean.csv', "
            f"index=False).")


def _names(path: Path, raw: tuple[str, ...]) -> tuple[str, ...]:
    """Header names stripped of surrounding spaces; duplicate names are refused."""
    names = tuple(n.strip() for n in raw)
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        base = n.rsplit("_duplicated_", 1)[0] if "_duplicated_" in n else None
        if base is not None and base in names[:i]:
            n = base  # the reader renamed a repeated name
        if n in seen and n:  # unnamed columns (trailing delimiters) keep the reader's names
            raise DataError(f"The data file {path} has two columns named {shown_name(n)} "
                            f"(columns {seen[n] + 1} and {i + 1}, after stripping the spaces "
                            f"around header names). Give every column its own name in the "
                            f"header line.")
        seen[n] = i
    out: list[str] = []
    for n in names:  # several unnamed columns: unique names, as the reader gives them
        out.append(n if n or "" not in out else f"_duplicated_{len(out)}")
    return tuple(out)


def unnamed(name: str) -> bool:
    """A column with no name in the header ('', or the reader's name for a repeated one)."""
    return not name.strip() or re.fullmatch(r"_duplicated_\d+", name) is not None


def shown_name(name: str) -> str:
    """A column name as messages quote it: control characters escaped, never raw."""
    if name.isprintable():
        return f"'{name}'"
    return repr(name)


def numeric_dtype(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _cells(s: pl.Series) -> list[str]:
    text = s.str.strip_chars().drop_nulls()
    text = text.filter(~text.str.to_lowercase().is_in(NA_TOKENS))
    return text.to_list()


def _all_numbers(s: pl.Series) -> bool:
    text = s.str.strip_chars()
    na = text.is_null() | text.str.to_lowercase().is_in(NA_TOKENS)
    return bool((na | text.cast(pl.Float64, strict=False).is_not_null()).all())


def _na_spellings(head: pl.DataFrame) -> tuple[str, ...]:
    seen: set[str] = set()
    for s in head.get_columns():
        cells = s.drop_nulls()
        hits = cells.filter(cells.str.strip_chars().str.to_lowercase().is_in(NA_TOKENS))
        seen.update(str(v) for v in hits.unique().to_list() if str(v))
    return tuple(sorted(seen))
