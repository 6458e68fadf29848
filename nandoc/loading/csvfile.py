"""What the first and last bytes of a CSV file say before it is parsed: its delimiter, whether
header and rows agree on it, line endings, blank lines at the end; and, once the parser has
refused a file, which line has too many fields. Every problem is a DataError paragraph."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from nandoc.errors import DataError

CANDIDATES = (",", ";", "\t", "|")
NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes (|)", " ": "spaces"}
HEAD_BYTES = 1 << 16
RAGGED_SEARCH_BYTES = 512 << 20  # how far to look for the line the parser refused


@dataclass(frozen=True)
class Layout:
    separator: str
    header_fields: int


def _fields(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep)))
    except (csv.Error, StopIteration):
        return 1


def _head_lines(path: Path) -> tuple[list[str], bool]:
    """The first lines (the last one dropped when the head cut it), and whether CR is the only
    line ending seen."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    cr_only = b"\r" in head and b"\n" not in head
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(head) == HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    return [ln for ln in lines if ln.strip()], cr_only


def sniff(path: Path) -> Layout:
    """Pick the delimiter from the header and check that the first rows use it too."""
    lines, cr_only = _head_lines(path)
    if cr_only:
        raise DataError(
            f"{path} ends its lines with a lone carriage return (old Mac style), which nandoc "
            f"cannot split into rows. Convert the line endings to \\n (e.g. "
            f"`tr '\\r' '\\n' < {path.name} > fixed.csv`)."
        )
    if not lines:
        raise DataError(f"The data file {path} holds only blank lines: it has no header and "
                        f"no rows.")
    header, rows = lines[0], lines[1:50]
    if path.suffix.lower() == ".tsv":
        sep = "\t"
    else:
        counts = {c: _fields(header, c) for c in CANDIDATES}
        sep = max(CANDIDATES, key=lambda c: (counts[c], -CANDIDATES.index(c)))
    k = _fields(header, sep)
    if rows:
        one = [r for r in rows if _fields(r, sep) == 1]
        if k > 1 and len(one) > len(rows) // 2:
            other = next((c for c in CANDIDATES if c != sep
                          and all(_fields(r, c) == k for r in one)), None)
            if other is not None:
                raise DataError(
                    f"The header of {path} is separated by {NAMES[sep]} but its rows by "
                    f"{NAMES[other]} (line 2: {rows[0][:60]!r}). Save the file with one "
                    f"delimiter throughout, e.g. df.to_csv('{path.name}', index=False)."
                )
        if k == 1:
            spaced = header.split()
            if len(spaced) > 1 and all(len(r.split()) == len(spaced) for r in rows):
                raise DataError(
                    f"{path} seems to be separated by spaces (header {header[:60]!r}), which "
                    f"nandoc does not read: it reads comma, semicolon, tab or pipe separated "
                    f"files. Save it with commas, e.g. df.to_csv('{path.name}', index=False)."
                )
    return Layout(sep, k)


def first_ragged_line(path: Path, sep: str, n_fields: int) -> tuple[int, int] | None:
    """(line number, fields) of the first line with more fields than the header, if found in
    the first RAGGED_SEARCH_BYTES."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=sep)
        try:
            for row in reader:
                if len(row) > n_fields and reader.line_num > 1:
                    return reader.line_num, len(row)
                if raw.tell() > RAGGED_SEARCH_BYTES:
                    return None
        except csv.Error:
            return None
    return None


def trailing_blank_lines(path: Path) -> int:
    """Whitespace-only lines at the very end of the file (readers such as pandas skip them)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - HEAD_BYTES))
        tail = fh.read()
    parts = tail.replace(b"\r\n", b"\n").split(b"\n")
    if parts and parts[-1] == b"":
        parts = parts[:-1]  # the final line terminator
    k = 0
    for part in reversed(parts[1:] if size > HEAD_BYTES else parts):
        if part.strip():
            break
        k += 1
    return k
