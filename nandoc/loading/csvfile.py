"""What the first and last bytes of a CSV file say before it is parsed: its delimiter, whether
header and rows agree on it, line endings, blank lines at the end; and, once the parser has
refused a file, which line has too many fields. Every problem is a DataError paragraph."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from nandoc.errors import DataError
from nandoc.loading.frames import first_line

CANDIDATES = (",", ";", "\t", "|")
NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes (|)", " ": "spaces"}
HEAD_BYTES = 1 << 16
RAGGED_SEARCH_BYTES = 512 << 20  # how far to look for the line the parser refused


@dataclass(frozen=True)
class Layout:
    separator: str
    header_fields: int
    skip_lines: int = 0  # lines before the header: '#' comments (and blank lines among them)
    comment_lines: int = 0  # the '#' lines among them
    # the names written on the last comment line when the first line after the comments is
    # already data (np.savetxt(..., header=...) writes "# a,b,label"); None: a header line
    comment_header: tuple[str, ...] | None = None


def _fields(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep)))
    except (csv.Error, StopIteration):
        return 1


def _head_lines(path: Path) -> tuple[list[str], bool, int, list[str]]:
    """The first lines after any leading '#' comment lines (the last one dropped when the head
    cut it), whether CR is the only line ending seen, how many lines the comments (and blank
    lines among them) take, and the comment lines."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    cr_only = b"\r" in head and b"\n" not in head
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(head) == HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    skip, comments = 0, []
    for ln in lines:
        if ln.lstrip().startswith("#"):
            comments.append(ln)
        elif ln.strip():
            break
        skip += 1
    if not comments or skip == len(lines):
        skip, comments = 0, []
    return [ln for ln in lines[skip:] if ln.strip()], cr_only, skip, comments


def _numbers_only(line: str, sep: str) -> bool:
    try:
        cells = next(csv.reader([line], delimiter=sep))
    except (csv.Error, StopIteration):
        return False
    try:
        for c in cells:
            if c.strip():
                float(c)
    except ValueError:
        return False
    return any(c.strip() for c in cells)


def _comment_header(comments: list[str], first: str, sep: str) -> tuple[str, ...] | None:
    """The names on the last comment line, when the first line after it is data already."""
    if not comments or not _numbers_only(first, sep):
        return None
    names = comments[-1].lstrip().lstrip("#").strip()
    try:
        cells = [c.strip() for c in next(csv.reader([names], delimiter=sep))]
    except (csv.Error, StopIteration):
        return None
    if len(cells) == _fields(first, sep) and all(cells) and not _numbers_only(names, sep):
        return tuple(cells)
    return None


def sniff(path: Path, shown: Path | None = None) -> Layout:
    """Pick the delimiter from the header and check that the first rows use it too; `shown`
    is the file named in messages (`path` may be a decompressed or UTF-8 copy of it)."""
    lines, cr_only, skip, comments = _head_lines(path)
    path = shown or path
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
    if ".tsv" in [s.lower() for s in path.suffixes[-2:]]:  # data.TSV, data.tsv.gz
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
    header_names = _comment_header(comments, header, sep)
    return Layout(sep, k, skip, len(comments), header_names)


def first_ragged_line(path: Path, sep: str, n_fields: int, skip: int = 0,
                      header: bool = True) -> tuple[int, int] | None:
    """(line number, fields) of the first line with more fields than the header, if found in
    the first RAGGED_SEARCH_BYTES; `skip` lines (comments) come before the header."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        for _ in range(skip):
            text.readline()
        reader = csv.reader(text, delimiter=sep)
        try:
            for row in reader:
                if len(row) > n_fields and (reader.line_num > 1 or not header):
                    return reader.line_num + skip, len(row)
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


def csv_error(path: Path, read: Path, kind: str, sep: str, n_columns: int, exc: BaseException,
              skip: int = 0, header: bool = True) -> str:
    """The paragraph for a file the parser refused; `read` is the file it read (the user's
    `path`, or a UTF-8 copy of it), `skip` the comment lines before the header."""
    shown = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}.get(sep, repr(sep))
    if "more fields" in str(exc):
        found = first_ragged_line(read, sep, n_columns, skip, header)
        where = (f"line {found[0]} has {found[1]} fields" if found else
                 "a row has more fields")
        return (f"The data file {path} could not be parsed: {where}, but the header has "
                f"{n_columns} columns (ragged rows; delimiter {shown}). Fix that row, or quote "
                f"text cells that contain the delimiter.")
    return (f"The data file {path} could not be parsed as {kind.upper()} "
            f"({first_line(exc)}). Check for an unclosed quote, ragged rows, a wrong "
            f"delimiter or a truncated file.")
