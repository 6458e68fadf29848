"""The detectors. Importing this package's modules registers every check with the registry."""

from __future__ import annotations

import importlib
import pkgutil

_failures: dict[str, str] = {}


def load_all() -> dict[str, str]:
    """Import every check module below this package so that each registers itself.

    A module that fails to import is recorded (module -> error) rather than raised: one broken
    detector never stops the others. The report shows it as a check that could not run.
    """
    for info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        if info.name in _failures:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            _failures[info.name] = f"{type(exc).__name__}: {exc}"
    return dict(_failures)
