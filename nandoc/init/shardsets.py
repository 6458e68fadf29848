"""Shard sets for `nandoc init`: several CSV or parquet files of one kind that are one table,
proposed as a glob (`data/part-*.parquet`) the way a single data file is proposed.

Two places hold them: the folder itself, where files whose names differ only in their numbers
(`part-1.csv`, `part-2.csv`) are a set, and a subfolder without subfolders of its own whose
data files of one kind are a set (a subfolder with subfolders is an image folder, never shards:
`nandoc.loading.shards.is_shard_folder`). Each glob is checked with the loader's own
`shard_paths`, so it names exactly the files check will read, in natural order.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

MIN_SHARDS = 2  # one file is a data file, not a set
COUNT_LIMIT = 1000  # shards whose rows init counts; beyond, the row count is left unknown


@dataclass(frozen=True)
class ShardSet:
    """A glob and the files it matches, in natural order (what check reads)."""

    path: Path  # the glob, under the folder init looks at
    files: tuple[Path, ...]
    kind: str  # csv | parquet

    @property
    def mtime(self) -> float:
        return max(p.stat().st_mtime for p in self.files)

    def describe(self) -> str:
        """'4 parquet shards (part-1.parquet ... part-4.parquet) read in natural order'."""
        names = (f"{self.files[0].name} ... {self.files[-1].name}" if len(self.files) > 2
                 else " and ".join(p.name for p in self.files))
        return f"{len(self.files)} {self.kind} shards ({names}) read in natural order"


def _kind(path: Path) -> str | None:
    from nandoc.loading.tablefile import data_kind

    kind = data_kind(path)[0]
    return kind if kind in ("csv", "parquet") else None


def _data_files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir()
                if p.is_file() and not p.name.startswith(".") and _kind(p) is not None]
    except OSError:
        return []


def _pattern(names: list[str]) -> str:
    """A glob matching every name: their common start and end around a `*` (digits trimmed
    from both, so `part-0001`, `part-0002` give `part-*`, not `part-000*`)."""
    start = os.path.commonprefix(names)
    end = os.path.commonprefix([n[len(start):][::-1] for n in names])[::-1]
    start, end = start.rstrip("0123456789"), end.lstrip("0123456789")
    return f"{glob.escape(start)}*{glob.escape(end)}"


def _shard_set(pattern: Path, group: list[Path], exact: bool) -> ShardSet | None:
    """The set a glob names, when the loader reads it as one and it holds the whole group
    (`exact`: nothing else, so that a glob among other files here takes none of them)."""
    from nandoc.errors import DataError
    from nandoc.loading.shards import is_glob, shard_paths

    if not is_glob(pattern):
        return None
    try:
        files, kind = shard_paths(pattern)
    except (DataError, OSError):
        return None
    if len(files) < MIN_SHARDS or not set(group) <= set(files) or (
            exact and set(files) != set(group)):
        return None
    return ShardSet(pattern, tuple(files), kind)


def _numbered_groups(files: list[Path]) -> list[list[Path]]:
    """Files of one kind whose names are the same but for their numbers."""
    groups: dict[tuple[str | None, str], list[Path]] = {}
    for p in files:
        if re.search(r"\d", p.name):
            groups.setdefault((_kind(p), re.sub(r"\d+", "#", p.name)), []).append(p)
    return [g for g in groups.values() if len(g) >= MIN_SHARDS]


def find_shard_sets(folder: Path) -> list[ShardSet]:
    """The shard sets in `folder` (numbered files of one kind) and in its subfolders of
    shards (their data files of one kind), each checked with the loader's `shard_paths`."""
    from nandoc.loading.shards import is_shard_folder

    found: list[ShardSet] = []
    for group in _numbered_groups(_data_files(folder)):
        found.append(_shard_set(folder / _pattern([p.name for p in group]), group, exact=True))
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in subfolders:
        if not is_shard_folder(sub):  # subfolders of its own: an image folder
            continue
        by_kind: dict[str | None, list[Path]] = {}
        for p in _data_files(sub):
            by_kind.setdefault(_kind(p), []).append(p)
        for _, group in sorted(by_kind.items()):
            if len(group) >= MIN_SHARDS:
                found.append(_shard_set(sub / _pattern([p.name for p in group]), group,
                                        exact=False))
    seen: set[Path] = set()
    out = []
    for s in found:
        if s is not None and s.path not in seen:
            seen.add(s.path)
            out.append(s)
    return out


def shard_columns(shards: ShardSet, columns_of) -> tuple[tuple[str, ...], tuple[str, ...],
                                                         int | None]:
    """(columns, numeric columns, rows in all shards) of a set, read as check reads it
    (`open_shard_set`: a DataError when the shards' columns differ); `columns_of` reads one
    file's (columns, numeric columns, row count)."""
    from nandoc.loading.shards import open_shard_set

    open_shard_set(shards.path)
    columns, numeric, n_rows = columns_of(shards.files[0])
    if n_rows is None or len(shards.files) > COUNT_LIMIT:
        return columns, numeric, None
    for p in shards.files[1:]:
        n = columns_of(p)[2]
        if n is None:
            return columns, numeric, None
        n_rows += n
    return columns, numeric, n_rows
