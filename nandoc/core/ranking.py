"""Rank findings so that rank 1 is the most likely root cause, not the first symptom."""

from __future__ import annotations

from collections.abc import Iterable

from nandoc.core.causes import CAUSES, TIER_MODEL
from nandoc.core.finding import Finding


def rank_key(f: Finding) -> tuple:
    tier = CAUSES[f.cause].tier if f.cause in CAUSES else TIER_MODEL
    # Severity first: an error outranks any warning. Within a severity, a finding seen to
    # produce the observed non-finite value comes before real problems that do not produce it;
    # then upstream causes (data, then model and loss, then dynamics) before the symptoms they
    # produce; then the stronger evidence. The rest only makes the order deterministic.
    return (
        -f.severity.level,
        not f.confirmed,  # measured to produce the observed non-finite value: first
        tier,
        -round(f.confidence, 3),
        f.cause,
        f.location.file or "",
        f.location.line or 0,
        f.location.column or "",
        f.location.layer or "",
        f.title,
    )


def reconcile(findings: Iterable[Finding]) -> list[Finding]:
    """Drop static suspects that a measured finding about the same place confirms or clears,
    and keep one measured finding per line of code: the strongest (two checks can measure the
    same line, e.g. over the reachable points and on a real batch)."""
    findings = list(findings)
    measured = {f.place for f in findings if f.basis == "measured"}
    kept = [f for f in findings if f.basis == "measured" or f.place not in measured]
    best: dict[tuple, Finding] = {}
    for f in kept:
        if f.basis != "measured" or not (f.location.file and f.location.line):
            continue
        other = best.get(f.place)
        if other is None or _strength(f) > _strength(other):
            best[f.place] = f
    return [f for f in kept if best.get(f.place, f) is f]


def _strength(f: Finding) -> tuple:
    return (f.severity.level, f.confirmed, f.location.epoch is not None, f.confidence)


def rank(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(reconcile(findings), key=rank_key)
