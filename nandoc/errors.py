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
