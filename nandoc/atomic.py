"""Write a file whole or not at all: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
