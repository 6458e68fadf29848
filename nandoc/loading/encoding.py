"""Bytes before text: compressed data files and text encodings other than UTF-8.

A data file that is gzip (or, when the `zstandard` module is installed, zstd) compressed is
decompressed once, streaming, to a temporary file in the system temp folder; a CSV in UTF-16
(with or without a byte order mark) or in a single-byte encoding (Latin-1 / Windows-1252: bytes
that are not valid UTF-8) is transcoded once, streaming, to a UTF-8 temporary file. The parser
then reads that copy; every message still names the user's file, and rows and lines keep their
meaning (transcoding keeps every line). The copies are deleted when the process ends (and by
`release`). bzip2, xz and zip archives are refused with the command that unpacks them.

Only the first and last HEAD_BYTES of a file are looked at to choose its encoding: a plain
UTF-8 file is read in place, at full speed. A stray invalid byte in the middle of an otherwise
UTF-8 file is read as U+FFFD by the parser, and shows up as an unparsable cell if it is in a
numeric column.
"""

from __future__ import annotations

import atexit
import codecs
import gzip
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from nandoc.errors import DataError

HEAD_BYTES = 1 << 16
CHUNK = 4 << 20
MAX_EXPANDED = 64 << 30  # the most a decompressed or transcoded copy may take
SPARE_DISK = 256 << 20  # left free on the temp disk

# compressed-file suffix -> (format, how to unpack it yourself, with {name} the file name)
COMPRESSED = {
    ".gz": ("gzip", "gunzip -k {name}"), ".gzip": ("gzip", "gunzip -k {name}"),
    ".zst": ("zstd", "zstd -d {name}"), ".zstd": ("zstd", "zstd -d {name}"),
    ".bz2": ("bzip2", "bunzip2 -k {name}"), ".xz": ("xz", "xz -dk {name}"),
    ".zip": ("zip", "unzip {name}"),
}
_MAGIC = ((b"\x1f\x8b", ".gz"), (b"\x28\xb5\x2f\xfd", ".zst"), (b"BZh", ".bz2"),
          (b"\xfd7zXZ\x00", ".xz"), (b"PK\x03\x04", ".zip"))

_TEMPS: set[Path] = set()


@dataclass(frozen=True)
class Prepared:
    read_path: Path  # the file to parse: `path` itself, or a UTF-8 temporary copy
    compression: str | None = None  # "gzip", "zstd"
    encoding: str | None = None  # the text encoding when not UTF-8, e.g. "UTF-16 LE"

    @property
    def notes(self) -> tuple[str, ...]:
        out = []
        if self.compression:
            out.append(f"{self.compression}-compressed: decompressed to a temporary file")
        if self.encoding:
            out.append(f"encoded in {self.encoding}: read through a UTF-8 temporary copy")
        return tuple(out)


def split_suffix(path: Path) -> tuple[str, str | None]:
    """(the data suffix, lower-cased; the compression suffix or None): data.CSV.GZ ->
    ('.csv', '.gz')."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        return (suffixes[-2] if len(suffixes) > 1 else ""), suffixes[-1]
    return (suffixes[-1] if suffixes else ""), None


def magic_compression(path: Path) -> str | None:
    """The compression suffix that the file's first bytes announce, or None."""
    with path.open("rb") as fh:
        head = fh.read(8)
    return next((suffix for magic, suffix in _MAGIC if head.startswith(magic)), None)


def release(path: Path | None) -> None:
    """Delete a temporary copy made here (no-op for any other path)."""
    if path is not None and path in _TEMPS:
        _TEMPS.discard(path)
        path.unlink(missing_ok=True)


@atexit.register
def _cleanup() -> None:
    for p in list(_TEMPS):
        release(p)


def _temp(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="nandoc-data-", suffix=suffix)
    os.close(fd)
    path = Path(name)
    _TEMPS.add(path)
    return path


def _room(path: Path, shown: Path, what: str, hint: str) -> int:
    """The most bytes a temporary copy may take: MAX_EXPANDED, or the temp disk's free
    space less a margin; refuses when there is no room at all."""
    folder = Path(tempfile.gettempdir())
    free = shutil.disk_usage(folder).free - SPARE_DISK
    if free <= 0:
        raise DataError(f"{shown} is {what}, and nandoc reads it through a temporary copy, but "
                        f"the temp folder {folder} has no free space. Free some space or set "
                        f"TMPDIR to a folder with room, or {hint}.")
    return min(MAX_EXPANDED, free)


def _too_big(shown: Path, what: str, cap: int, hint: str) -> DataError:
    return DataError(f"{shown} is {what}, and its copy would take more than {cap / 2**30:.1f} "
                     f"GiB (the most nandoc writes to the temp folder "
                     f"{tempfile.gettempdir()}). {hint[0].upper()}{hint[1:]} onto a disk with "
                     f"room and point nandoc at the result, or set TMPDIR to a bigger folder.")


def decompress(path: Path, compression: str, inner_suffix: str) -> Path:
    """Stream `path` (gzip or zstd) into a temporary file; returns its path."""
    hint = COMPRESSED[".gz" if compression == "gzip" else ".zst"][1].format(name=path.name)
    what = f"{compression}-compressed"
    cap = _room(path, path, what, f"decompress it first: `{hint}`")
    out = _temp(inner_suffix or ".csv")
    written = 0
    try:
        with _opener(path, compression) as src, out.open("wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > cap:
                    raise _too_big(path, what, cap, f"decompress it with `{hint}`")
                dst.write(chunk)
    except DataError:
        release(out)
        raise
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        release(out)
        raise DataError(f"{path} is a damaged {compression} file ({exc}): it may be truncated "
                        f"or not {compression} at all. Check that `{hint}` unpacks it, then "
                        f"compress it again or point nandoc at the unpacked file.") from None
    return out


def _opener(path: Path, compression: str):
    if compression == "gzip":
        return gzip.open(path, "rb")
    import zstandard  # checked by the caller

    return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)


def zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


# --- text encodings -------------------------------------------------------------------------

def detect(path: Path, shown: Path | None = None) -> tuple[str, str] | None:
    """(Python codec, name to show) of a text file that is not plain UTF-8; None for UTF-8
    (with or without a byte order mark: the parser reads both). A binary file is refused;
    `shown` is the file messages name (`path` may be its decompressed copy)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        tail = b""
        if size > 2 * HEAD_BYTES:
            fh.seek(size - HEAD_BYTES)
            tail = fh.read()
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32", "UTF-32"
    if head.startswith(b"\xff\xfe"):
        return "utf-16", "UTF-16 LE"
    if head.startswith(b"\xfe\xff"):
        return "utf-16", "UTF-16 BE"
    if head.startswith(b"\xef\xbb\xbf"):
        return None
    sixteen = _utf16_by_nuls(head)
    if sixteen:
        return sixteen
    if _binary(head):
        raise DataError(f"{shown or path} does not look like a text file: "
                        f"{_binary(head):.0%} of its first {len(head)} bytes are control "
                        f"bytes (a spreadsheet, an image or a pickle renamed .csv?). Export "
                        f"the data as CSV (df.to_csv('data.csv', index=False)) or parquet.")
    if _valid_utf8(head) and _valid_utf8(tail, start_cut=True):
        return None
    # not UTF-8: a single-byte code page; Windows-1252 unless it leaves bytes undefined
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1", "Latin-1 (ISO-8859-1)"
    return "cp1252", "Windows-1252 (Latin-1)"


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def _binary(head: bytes) -> float:
    """The share of control bytes (not tab, newline, form feed, CR) when it is over 5%."""
    if not head:
        return 0.0
    share = (len(head) - len(head.translate(None, _CONTROL))) / len(head)
    return share if share > 0.05 else 0.0


def _utf16_by_nuls(head: bytes) -> tuple[str, str] | None:
    """BOM-less UTF-16 of mostly ASCII text: every other byte is NUL."""
    n = len(head) // 2 * 2
    if n < 4:
        return None
    even, odd = head[0:n:2], head[1:n:2]
    z_even, z_odd = even.count(0), odd.count(0)
    half = n // 2
    if z_odd > 0.6 * half and z_even < 0.1 * half:
        return "utf-16-le", "UTF-16 LE (no byte order mark)"
    if z_even > 0.6 * half and z_odd < 0.1 * half:
        return "utf-16-be", "UTF-16 BE (no byte order mark)"
    return None


def _valid_utf8(data: bytes, start_cut: bool = False) -> bool:
    """Valid UTF-8, allowing a character cut at either end of the slice."""
    if start_cut:  # skip continuation bytes of a character that began before the slice
        i = 0
        while i < min(4, len(data)) and data[i] & 0xC0 == 0x80:
            i += 1
        data = data[i:]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def transcode(path: Path, source: Path, codec: str, shown_encoding: str,
              suffix: str) -> Path:
    """Stream `source` (the user's file `path`, or its decompressed copy) from `codec` into a
    UTF-8 temporary file; returns its path."""
    hint = f"convert it first: `iconv -f {_iconv_name(codec)} -t UTF-8 {path.name} > " \
           f"{path.stem}-utf8{suffix or '.csv'}`"
    what = f"encoded in {shown_encoding}"
    cap = _room(source, path, what, hint)
    out = _temp(suffix or ".csv")
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    written = 0
    try:
        with source.open("rb") as src, out.open("wb") as dst:
            first = True
            while True:
                chunk = src.read(CHUNK)
                text = decoder.decode(chunk, final=not chunk)
                if first and text:
                    text, first = text.lstrip("\ufeff"), False
                data = text.replace("\x00", "").encode("utf-8")
                written += len(data)
                if written > cap:
                    raise _too_big(path, what, cap, hint.replace("convert it first: ",
                                                                 "convert it with "))
                dst.write(data)
                if not chunk:
                    break
    except BaseException:
        release(out)
        raise
    return out


def _iconv_name(codec: str) -> str:
    return {"utf-16": "UTF-16", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE",
            "utf-32": "UTF-32", "cp1252": "CP1252", "latin-1": "LATIN1"}.get(codec, codec)


def prepare_text(path: Path, source: Path, suffix: str) -> tuple[Path, str | None]:
    """(the UTF-8 file to parse, the encoding shown when it was not UTF-8)."""
    found = detect(source, path)
    if found is None:
        return source, None
    codec, shown = found
    read = transcode(path, source, codec, shown, suffix)
    if source != path:
        release(source)  # the decompressed copy is no longer needed
    return read, shown


def refuse_compressed(path: Path, suffix: str) -> DataError:
    """The paragraph for an archive nandoc does not unpack."""
    fmt, how = COMPRESSED[suffix]
    cmd = how.format(name=path.name)
    if fmt == "zip":
        return DataError(f"{path} is a zip archive, not a CSV file; nandoc does not read "
                         f"inside zip archives (an Excel .xlsx file is one too). Unpack it "
                         f"first: `{cmd}` (for Excel, save the sheet as CSV) and point nandoc "
                         f"at the .csv inside.")
    if fmt == "zstd":
        return DataError(f"{path} is zstd-compressed, and the `zstandard` Python module that "
                         f"nandoc would read it with is not installed. Decompress it first: "
                         f"`{cmd}` (or pip install zstandard).")
    return DataError(f"{path} is {fmt}-compressed, which nandoc does not read directly. "
                     f"Decompress it first: `{cmd}`, or compress it with gzip instead.")
