"""Candidate fixes: a change a check proposes for its finding, which replay verifies by
re-running the failing steps with it. Checks declare them (`@check(..., fixes=...)`); the
engine applies and verifies them generically, without knowing any cause."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Trial:
    """What a candidate may change on a copy of the run: the model (a clone restored to the
    state the fix is tried from), its optimizer and loss, and the data."""

    model: Any
    optimizer: Any
    loss: Any
    data: Any


@dataclass(frozen=True)
class Candidate:
    cause: str
    change: str  # what is changed, in words: shown as the verified fix
    apply: Callable[[Trial], None]
    # Training-dynamics fixes (learning rate, clipping) are tried from the run's first step:
    # the state just before such a NaN has already blown up, and no fix can save it.
    from_start: bool = False
    # The advice to show once this candidate is verified NaN-free (None: keep the finding's).
    advice: str | None = None
