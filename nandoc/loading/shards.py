"""Sharded data: a glob (`data/part-*.parquet`) or a folder of CSV or parquet shards.

The shards are read one after another in natural order (part-2 before part-10) as one table:
the scan streams each in turn, so memory stays bounded whatever their number, and rows are
numbered from 1 across the whole set (the validation split is the last fraction of rows in
shard order). `ShardMap` turns those numbers back into (shard file, row within it) for
findings. A folder with subfolders is an image folder, never a shard set.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nandoc.errors import DataError
from nandoc.loading.tablefile import Table, data_kind, open_table

GLOB_CHARS = ("*", "?", "[")
MAX_SHARDS = 100_000


def is_glob(path: Path) -> bool:
    return any(c in str(path) for c in GLOB_CHARS) and not path.exists()


def is_shard_folder(path: Path) -> bool:
    """A folder without subfolders: its data files are shards (an image folder has classes)."""
    try:
        return path.is_dir() and not any(p.is_dir() and not p.name.startswith(".")
                                         for p in path.iterdir())
    except OSError:
        return False


def is_shard_set(path: Path | None) -> bool:
    return path is not None and (is_glob(path) or is_shard_folder(path))


def natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def shard_paths(path: Path, role: str = "data") -> tuple[list[Path], str]:
    """(the shard files in natural order, their kind: csv | parquet); DataError otherwise."""
    key = "[data] validation_path" if role == "validation" else "[data] path (or DATA)"
    if is_glob(path):
        found = [Path(p) for p in glob.glob(str(path)) if Path(p).is_file()]
        where = f"The pattern {path} matches"
    else:
        found = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        where = f"The folder {path} holds"
    kinds: dict[str, list[Path]] = {}
    for p in found:
        kind = data_kind(p)[0]
        if kind in ("csv", "parquet"):
            kinds.setdefault(kind, []).append(p)
    if not kinds:
        if not is_glob(path):
            raise DataError(f"The data path {path} is a folder with no .csv or .parquet shard "
                            f"in it; point {key} at a .csv, .parquet or .npz file, at a folder "
                            f"or glob of CSV or parquet shards (e.g. data/part-*.parquet), or "
                            f"at an image folder (one subfolder per class, the images inside).")
        raise DataError(f"{where} no CSV or parquet file, so there is no data to read. Point "
                        f"{key} at the shards, e.g. data/part-*.parquet or a folder holding "
                        f"only .csv or only .parquet files.")
    if len(kinds) > 1:
        shown = "; ".join(f"{len(v)} {k} (e.g. {sorted(v, key=natural_key)[0].name})"
                          for k, v in sorted(kinds.items()))
        raise DataError(f"{where} shards of two kinds ({shown}); nandoc reads one kind at a "
                        f"time. Narrow {key} to one kind, e.g. {_narrowed(path, kinds)}.")
    kind, paths = next(iter(kinds.items()))
    if len(paths) > MAX_SHARDS:
        raise DataError(f"{where} {len(paths)} shards, more than nandoc reads "
                        f"({MAX_SHARDS}); merge them or point {key} at a subset.")
    return sorted(paths, key=natural_key), kind


def _narrowed(path: Path, kinds: dict[str, list[Path]]) -> str:
    kind = sorted(kinds)[0]
    base = path.parent if is_glob(path) else path
    return str(base / f"*.{'parquet' if kind == 'parquet' else 'csv'}")


def column_difference(first: tuple[str, ...], other: tuple[str, ...]) -> str:
    missing = [c for c in first if c not in other]
    extra = [c for c in other if c not in first]
    parts = []
    if missing:
        parts.append("lacks " + ", ".join(repr(c) for c in missing[:10]))
    if extra:
        parts.append("has extra " + ", ".join(repr(c) for c in extra[:10]))
    if not parts:
        parts.append("has the same columns in another order")
    return " and ".join(parts)


@dataclass(frozen=True)
class ShardMap:
    """Where each shard's rows begin in the set's numbering (from 1)."""

    names: tuple[str, ...]
    starts: tuple[int, ...]  # global row of each shard's first row
    n_rows: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.names)

    def locate(self, rows) -> list[tuple[str, list[int]]]:
        """Global rows -> [(shard name, rows within it)], in order of first appearance."""
        out: dict[int, list[int]] = {}
        starts = np.asarray(self.starts)
        for r in rows:
            i = int(np.searchsorted(starts, int(r), side="right")) - 1
            i = max(0, i)
            out.setdefault(i, []).append(int(r) - self.starts[i] + 1)
        return [(self.names[i], v) for i, v in out.items()]

    def where(self, rows) -> tuple[str | None, tuple[int, ...], str]:
        """(the file of the first row, its rows within that file, a phrase naming every
        shard the rows fall in: 'rows 12, 40 of part-3.parquet and 7 of part-9.parquet')."""
        parts = self.locate(rows)
        if not parts:
            return None, (), ""
        phrase = " and ".join(f"{', '.join(str(r) for r in rs[:5])}"
                              f"{f' (+{len(rs) - 5})' if len(rs) > 5 else ''} of {name}"
                              for name, rs in parts[:4])
        if len(parts) > 4:
            phrase += f" and more in {len(parts) - 4} other shard(s)"
        first = parts[0]
        return first[0], tuple(first[1]), ("row " if len(list(rows)) == 1 else "rows ") + phrase


def open_shard_set(path: Path) -> Table:
    """The shards as one Table (`Table.shards` holds each shard's own); DataError when they
    do not share their columns."""
    paths, kind = shard_paths(path)
    tables: list[Table] = []
    for p in paths:
        t = open_table(p)
        if tables and t.columns != tables[0].columns:
            raise DataError(
                f"The shard {p.name} ({p}) does not have the columns of {tables[0].path.name}, "
                f"the first shard of {path}: it {column_difference(tables[0].columns, t.columns)}"
                f". Every shard must have the same columns in the same order; rewrite it, or "
                f"leave it out of the pattern.")
        tables.append(t)
    first = tables[0]
    text = frozenset().union(*(t.string_columns for t in tables))
    names = ", ".join(t.path.name for t in tables[:3]) + (
        f" ... {tables[-1].path.name}" if len(tables) > 3 else "")
    notes = (*first.notes, f"{len(tables)} {kind} shard(s) read in order: {names}")
    formats = dict(first.number_formats)
    for t in tables[1:]:
        for c, f in t.number_formats:
            formats.setdefault(c, f)
    return Table(path, kind, None, first.columns, text, first.header_lines, first.separator,
                 sum(t.size_bytes for t in tables), first.null_values,
                 raw_columns=first.raw_columns, skip_lines=first.skip_lines,
                 has_header=first.has_header, number_formats=tuple(formats.items()),
                 notes=notes, column_types=first.column_types, shards=tuple(tables))


def shard_location(shards: ShardMap | None, rows, default_file: str | None
                   ) -> tuple[str | None, tuple[int, ...], str]:
    """(file, rows within it, an evidence suffix) for a finding's rows: unchanged for one
    file; for a shard set, the first row's shard and its rows there, and a suffix naming every
    shard the rows fall in."""
    rows = [int(r) for r in rows]
    if shards is None or not rows:
        return default_file, tuple(rows), ""
    file, local, phrase = shards.where(rows)
    return file, local, f" (in shard order; within the shards: {phrase})"
