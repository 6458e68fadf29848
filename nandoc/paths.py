"""What kind of thing an input path is, decided before anything opens it.

A named pipe, a device or a socket given where a file is expected would make nandoc wait
forever (a FIFO's open blocks until a writer comes) or read without end (/dev/zero), and nandoc
reads its inputs more than once; a name too long for the system or a path through a file are
the user's typing, not a bug. Each is refused here as one paragraph, with the error class of
the input's role (config, model, data, custom objects).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from nandoc.errors import NandocError

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def shown(path: Path | str, most: int = 120) -> str:
    """The path as a message shows it: a very long one is cut in the middle."""
    text = str(path)
    return text if len(text) <= most else f"{text[:most // 2]}...{text[-most // 2:]}"


def require_file(path: Path, role: str, error: type[NandocError], *, fix: str,
                 folder: str | None = None) -> Path:
    """`path` when it is a regular file (or, with `folder`, a folder); otherwise `error` with
    one paragraph. `role` names the input ("data file"), `fix` says where it was given and how
    to change it; `folder`, when a folder is accepted, is None to refuse folders, or "" to
    accept them (the caller says what a folder means)."""
    name = shown(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"The {role} {name} does not exist. {fix}") from None
    except OSError as exc:
        raise error(_os_error(path, role, exc, fix)) from None
    except ValueError:  # an embedded NUL byte
        raise error(f"The {role} path {name!r} contains a NUL character; give a plain file "
                    f"path. {fix}") from None
    if stat.S_ISDIR(st.st_mode):
        if folder is not None:
            return path
        raise error(f"The {role} path {name} is a folder, not a file. {fix}")
    for test, what in _KINDS:
        if test(st.st_mode):
            raise error(f"The {role} {name} is {what}, not a regular file: nandoc reads its "
                        f"inputs more than once, and reading this would wait or run without "
                        f"end. Save the content to a regular file first and give that. {fix}")
    return path


def _os_error(path: Path, role: str, exc: OSError, fix: str) -> str:
    name = shown(path)
    if exc.errno == errno.ENAMETOOLONG:
        longest = max((len(p) for p in Path(path).parts), default=0)
        return (f"The {role} path {name} is too long for this system ({len(str(path))} "
                f"characters, the longest name in it {longest}; most systems allow 255 per "
                f"name and 4096 in all). Look for a pasted value in it, or rename the "
                f"file. {fix}")
    if exc.errno == errno.ENOTDIR:
        parent = _file_on_the_way(Path(path))
        through = f" {shown(parent)} is a file, not a folder," if parent else ""
        return (f"The {role} path {name} goes through a file as if it were a folder:"
                f"{through} so the path cannot exist. {fix}")
    if exc.errno == errno.ELOOP:
        return f"The {role} path {name} is a loop of symbolic links. {fix}"
    if exc.errno == errno.EACCES:
        return (f"The {role} {name} cannot be reached: permission denied on a folder of its "
                f"path. Check the folders' permissions. {fix}")
    return f"The {role} {name} could not be examined ({exc.strerror or exc}). {fix}"


def _file_on_the_way(path: Path) -> Path | None:
    """The first part of `path` that is a file where a folder is needed."""
    for parent in reversed(path.parents):
        try:
            if parent.exists() and not parent.is_dir():
                return parent
        except OSError:
            return None
    return None
