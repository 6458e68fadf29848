"""nandoc: a doctor for Keras/TensorFlow training runs whose loss turns into NaN.

    report = nandoc.diagnose(model, x, y)          # the same Report the CLI renders
    model.fit(x, y, callbacks=[nandoc.keras.NanDoctor()])
"""

from __future__ import annotations

import os
import sys
from typing import Any

from nandoc._version import __version__

# nandoc instruments TensorFlow graphs (tf.function, GradientTape, check_numerics): it runs
# Keras on the TensorFlow backend whatever KERAS_BACKEND says, unless Keras is already imported
# (then `require_tensorflow_backend` says clearly what to do).
if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "tensorflow"

__all__ = ["__version__", "diagnose"]


def require_tensorflow_backend() -> None:
    """Refuse, in one clear paragraph, to work on a Keras that runs on another backend."""
    keras = sys.modules.get("keras")
    if keras is None:
        return
    try:
        backend = keras.backend.backend()
    except Exception:  # a half-imported keras: the import itself will say what is wrong
        return
    if backend != "tensorflow":
        from nandoc.errors import ConfigError

        raise ConfigError(
            f"Keras runs on the '{backend}' backend in this process (KERAS_BACKEND="
            f"{os.environ.get('KERAS_BACKEND', backend)!r}); nandoc instruments TensorFlow "
            f"graphs and works on the TensorFlow backend only. Set KERAS_BACKEND=tensorflow "
            f"before importing keras (or import nandoc first), or run the `nandoc` command, "
            f"which always uses TensorFlow.")


def __getattr__(name: str) -> Any:
    # Imported on first use: `nandoc --version` and the CLI's start-up stay light.
    if name == "diagnose":
        from nandoc.api import diagnose

        return diagnose
    raise AttributeError(f"module 'nandoc' has no attribute {name!r}")
