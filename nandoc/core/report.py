"""The report: ranked findings plus how each check fared, the object every renderer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from nandoc.core.finding import FailOn, Finding, Severity
from nandoc.core.ranking import rank
from nandoc.core.records import FirstNonfinite

SCHEMA_VERSION = 1


class Outcome(str, Enum):
    RAN = "ran"
    NOT_APPLICABLE = "not-applicable"
    FAILED = "failed"  # the check crashed; the others still ran


@dataclass(frozen=True)
class CheckResult:
    check: str
    outcome: Outcome
    findings: int = 0
    message: str = ""  # why not applicable, or what crashed

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "outcome": self.outcome.value}
        out["findings"] = self.findings
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Report:
    command: str
    version: str
    findings: tuple[Finding, ...]
    checks: tuple[CheckResult, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific, e.g. replay's series
    first_nonfinite: FirstNonfinite | None = None  # where training first turned non-finite

    @classmethod
    def build(cls, command: str, version: str, findings: list[Finding], **kw: Any) -> Report:
        return cls(command=command, version=version, findings=tuple(rank(findings)), **kw)

    # What a training step raised (fit fails the same way); the run then saw less than asked.
    step_error: str | None = None
    # What this run did not look at by the user's choice or the inputs' nature (no model given,
    # a model saved without a loss): "what: why, and how to include it". Not a failure: a clean
    # run stays exit 0, but its verdict says what it does not cover.
    not_checked: tuple[str, ...] = ()

    # -- the verdict: the one place where clean, findings and incomplete are decided ---------

    def not_examined(self) -> list[str]:
        """What could not be examined: checks that crashed, a training step that raised."""
        out = [f"check {c.check}: {c.message}" for c in self.failed_checks()]
        if self.step_error:
            out.append(f"training step: {self.step_error}")
        return out

    @property
    def status(self) -> str:
        """`clean` only when every applicable check ran and nothing non-finite was seen (a
        non-finite value seen is always an error finding); `incomplete` when something could
        not be examined and no error finding explains the run."""
        if self.not_examined() and not self.count(Severity.ERROR):
            return "incomplete"
        return "findings" if self.findings else "clean"

    def exit_code(self, fail_on: FailOn) -> int:
        """1: a finding at or above `fail_on`; 2: an incomplete run; 0: otherwise."""
        if any(fail_on.is_failing(f.severity) for f in self.findings):
            return 1
        return 2 if self.status == "incomplete" else 0

    def scope_limits(self) -> list[str]:
        """The short names of what was not checked ("the model", "the loss")."""
        return [item.split(":", 1)[0] for item in self.not_checked]

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.outcome is Outcome.FAILED]
