"""The detectors. Importing this package registers every check with the core registry."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every check module below this package so that each registers itself."""
    for info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        importlib.import_module(info.name)
