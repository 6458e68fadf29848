"""Findings: frozen plain data describing one suspected cause of a NaN."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How bad a finding is, independent of how sure nandoc is about it."""

    ERROR = "error"  # will produce NaN/inf or a broken model; fix before training
    WARNING = "warning"  # can produce NaN under conditions nandoc has not confirmed
    INFO = "info"  # worth knowing; not a NaN cause by itself

    @property
    def level(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


class FailOn(str, Enum):
    """The `--fail-on` threshold: the lowest severity that makes the exit code 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NEVER = "never"

    def is_failing(self, severity: Severity) -> bool:
        if self is FailOn.NEVER:
            return False
        return severity.level >= Severity(self.value).level


@dataclass(frozen=True)
class Location:
    """Where a cause lives. `kind` is one of data, layer, loss, metric, optimizer, config."""

    kind: str
    column: str | None = None
    rows: tuple[int, ...] | None = None  # data rows counted from 1 in file order, header excluded
    lines: tuple[int, ...] | None = None  # the same rows as line numbers of a text file
    layer: str | None = None
    op: str | None = None
    name: str | None = None
    file: str | None = None
    line: int | None = None
    epoch: int | None = None
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def short(self) -> str:
        """A one-line human description, e.g. `losses.py:7` or `column 'x' rows 3, 9`."""
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.name and not self.file:
            parts.append(f"{self.kind} '{self.name}'")
        elif self.name:
            parts.append(f"in '{self.name}'")
        if self.layer:
            parts.append(f"layer '{self.layer}'")
        if self.op:
            parts.append(f"op {self.op}")
        if self.column:
            parts.append(f"column '{self.column}'")
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:5])
            more = "…" if len(self.rows) > 5 else ""
            parts.append(f"row{'s' if len(self.rows) > 1 else ''} {shown}{more}")
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}")
        if self.step is not None:
            parts.append(f"step {self.step}")
        return ", ".join(parts) if parts else self.kind


@dataclass(frozen=True)
class VerifiedFix:
    """The outcome of re-running the failing steps with a candidate fix applied."""

    change: str
    steps_ran: int
    nan_free: bool

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "steps_ran": self.steps_ran, "nan_free": self.nan_free}


@dataclass(frozen=True)
class Finding:
    """One suspected cause: what, where, the evidence, and the fix.

    `measured` holds the plain numbers behind the evidence (json-able) so that renderers and
    later stages can use them without re-running anything.
    """

    cause: str
    severity: Severity
    confidence: float
    title: str
    evidence: str
    location: Location
    fix: str
    verified_fix: VerifiedFix | None = None
    check: str = ""
    measured: Mapping[str, Any] = field(default_factory=dict)
    # "static": predicted without running the model (read from the code or the structure, or
    # from the data's statistics), a suspect until values confirm or clear it; "measured": seen
    # in values the model, loss or gradients really produced. A measured finding supersedes
    # static ones about the same place.
    basis: str = "measured"
    # Tied by observation to the non-finite value training produced: seen where it was born.
    confirmed: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if self.basis not in ("static", "measured"):
            raise ValueError(f"basis must be 'static' or 'measured', got {self.basis!r}")

    @property
    def place(self) -> tuple:
        """What makes two findings about the same thing: the cause and where it lives."""
        loc = self.location
        if loc.file and loc.line:
            return (self.cause, loc.file, loc.line)
        return (self.cause, loc.kind, loc.layer, loc.column, loc.name, loc.file)

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)

    def to_dict(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "cause": self.cause,
            "severity": self.severity.value,
            "confidence": round(self.confidence, 2),
            "title": self.title,
            "evidence": self.evidence,
            "location": self.location.to_dict(),
            "fix": self.fix,
            "verified_fix": self.verified_fix.to_dict() if self.verified_fix else None,
            "check": self.check,
            "basis": self.basis,
            **({"confirmed": True} if self.confirmed else {}),
        }
