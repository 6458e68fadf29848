"""nandoc: a doctor for Keras/TensorFlow training runs whose loss turns into NaN."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
