"""nandoc inside the user's own training: the NanDoctor callback for `model.fit`."""

from __future__ import annotations

from nandoc.keras.callback import NanDoctor

__all__ = ["NanDoctor"]
