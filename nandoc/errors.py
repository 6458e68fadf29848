"""One exception tree for problems the user can fix; each renders as one paragraph, exit 2."""

from __future__ import annotations


class NandocError(Exception):
    """A run that could not be done because of the user's input (exit code 2).

    The message is a complete paragraph: what is wrong, where, and how to fix it.
    """

    exit_code = 2


class ConfigError(NandocError):
    """The command line or nandoc.toml is malformed or inconsistent."""


class ModelLoadError(NandocError):
    """The model file is missing, unreadable, unsafe to load, or needs custom objects."""


class DataError(NandocError):
    """The data file is missing, unreadable, or does not fit the config or the model."""


class CustomObjectsError(NandocError):
    """A custom_objects Python file could not be imported."""


def crash_report(exc: BaseException, command: str = "") -> str:
    """For an unexpected exception (a bug in nandoc, not the user's input): write a log with
    the versions and the traceback to a file in the temporary folder, kept so that it can be
    attached to an issue, and return the one-paragraph message that says where it is."""
    import os
    import platform
    import sys
    import tempfile
    import traceback
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    dists = ("nandoc", "tensorflow", "tensorflow-cpu", "keras", "numpy", "polars", "pandas",
             "h5py", "typer")
    lines = [f"nandoc crash log: {command or ' '.join(sys.argv)}",
             f"python {sys.version.split()[0]} on {platform.platform()}",
             *(f"{d} {version(d)}" for d in dists), "",
             *traceback.format_exception(type(exc), exc, exc.__traceback__)]
    where = "the log could not be written"
    try:
        fd, path = tempfile.mkstemp(prefix="nandoc-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(line.rstrip("\n") for line in lines) + "\n")
        where = f"a log with the versions and the traceback is in {path}"
    except OSError:
        pass
    first = " ".join(str(exc).split())[:200]
    return (f"nandoc stopped on an internal error ({type(exc).__name__}"
            f"{': ' + first if first else ''}). This is a bug in nandoc, not a problem with "
            f"your files; {where}. Please attach it to an issue.")
