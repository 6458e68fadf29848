"""Write a file whole or not at all: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from nandoc.errors import ConfigError


class Exists(FileExistsError):
    """The target exists and the caller asked not to replace it."""


def write_text_atomic(path: Path, text: str, *, replace: bool = True) -> None:
    """Write `text` to `path` atomically; with replace=False, fail (Exists) if `path` exists,
    even if it appears while writing. Special files (/dev/stdout, a FIFO) are written directly."""
    write_bytes_atomic(path, text.encode("utf-8"), replace=replace)


def write_bytes_atomic(path: Path, data: bytes, *, replace: bool = True) -> None:
    """`write_text_atomic` for bytes."""
    path = Path(path)
    if path.exists() and not path.is_file():
        if not replace:
            raise Exists(str(path))
        with open(path, "wb") as fh:
            fh.write(data)
        return
    if not replace and path.exists():
        raise Exists(str(path))
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file 0600; a report should get the user's usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic, and fails if the file appeared meanwhile
        except FileExistsError:
            raise Exists(str(path)) from None
        except OSError:  # a file system without hard links
            if path.exists():
                raise Exists(str(path)) from None
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- where outputs may go: never onto an input, never into a folder that is not there --------

class OutputPathError(ConfigError, ValueError):
    """An output path that would replace an input, or that cannot be written. A ValueError too,
    so that the Python API (`NanDoctor(report_path=...)`) raises what callers expect."""


def same_file(a: Path, b: Path) -> bool:
    """Whether writing `a` would replace `b`: the same path through symlinks, or (both
    existing) the same file by device and inode, which also catches hard links."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def guard_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None]) -> None:
    """Refuse, before any work starts, an output that resolves to an input (through symlinks,
    or a hard link), two outputs on one file, and an output whose folder does not exist or is
    not writable. `outputs`: option -> path (e.g. "--output"); `inputs`: role -> path (e.g.
    "the training data file"); None values are skipped."""
    outs = {k: Path(v) for k, v in outputs.items() if v is not None}
    ins = {k: Path(v) for k, v in inputs.items() if v is not None}
    for option, path in outs.items():
        for role, source in ins.items():
            if same_file(path, source):
                same = "" if str(path) == str(source) else f" ({source}, the same file)"
                raise OutputPathError(
                    f"{option} {path} is {role}{same}: nandoc never writes over its inputs, "
                    f"and the report would replace it. Choose another path for {option}.")
    named = list(outs.items())
    for i, (option, path) in enumerate(named):
        for other, other_path in named[i + 1:]:
            if same_file(path, other_path):
                raise OutputPathError(
                    f"{option} {path} and {other} {other_path} are the same file: one would "
                    f"replace the other. Give them different paths.")
    for option, path in outs.items():
        check_writable(option, path)


def check_writable(option: str, path: Path) -> None:
    """The output's folder exists and nandoc may create files in it (or, for a special file
    such as /dev/stdout, the file itself is writable)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give the path of a file to write, "
                              f"e.g. {option} {path / 'report.json'}.")
    if path.exists() and not path.is_file():  # /dev/stdout, a FIFO: written directly
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{option} {path} cannot be written (permission denied). "
                                  f"Choose a writable path for {option}.")
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise OutputPathError(f"The folder of {option} {path} ({folder}) does not exist. Create "
                              f"it first, or choose a path in an existing folder.")
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path} is inside {folder}, which is not a folder. "
                              f"Choose a path in an existing folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"The folder {folder} of {option} {path} is not writable "
                              f"(permission denied). Choose a path in a folder you can write "
                              f"to.")


def is_html(path: Path | str) -> bool:
    """A report path that gets the HTML page (`.html`, `.htm`, any case); others get JSON."""
    return Path(path).suffix.lower() in (".html", ".htm")


def replaceable_report(path: Path) -> bool:
    """Whether what is at `path` may be replaced by a report: nothing, an empty file, or a
    report nandoc wrote before (JSON with the "nandoc" and "schema_version" keys, or an HTML
    page whose generator is nandoc)."""
    import json

    path = Path(path)
    if not path.exists():
        return True
    if not path.is_file():
        return False
    try:
        if path.stat().st_size == 0:
            return True
        if path.stat().st_size > 256 * 2**20:
            return False
        if is_html(path):
            with path.open(encoding="utf-8", errors="replace") as fh:
                return '<meta name="generator" content="nandoc' in fh.read(4096)
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "nandoc" in doc and "schema_version" in doc
