"""nandoc: a doctor for Keras/TensorFlow training runs whose loss turns into NaN.

    report = nandoc.diagnose(model, x, y)          # the same Report the CLI renders
    model.fit(x, y, callbacks=[nandoc.keras.NanDoctor()])
"""

from __future__ import annotations

from typing import Any

from nandoc._version import __version__

__all__ = ["__version__", "diagnose"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `nandoc --version` and the CLI's start-up stay light.
    if name == "diagnose":
        from nandoc.api import diagnose

        return diagnose
    raise AttributeError(f"module 'nandoc' has no attribute {name!r}")
