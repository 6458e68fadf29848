"""Observation confirms: the place where training first turned non-finite is evidence.

A finding about that place (the same loss line, the layer, the rows of the failing batch, the
optimizer's update) becomes a confirmed error; findings elsewhere keep their own severity and
rank below it. A non-finite value that no finding is tied to is never left unsaid: it becomes
`nonfinite-unexplained`, an error that says where it was seen.
"""

from __future__ import annotations

from pathlib import PurePath

from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.records import FirstNonfinite

CONFIRMED = 0.8  # at least: a finding keeps its own, higher confidence
TRAINING_CAUSES = {"exploding-gradients", "learning-rate-too-high"}
DATA_CAUSES = {"data-nonfinite", "label-out-of-range"}


def _same_file(a: str | None, b: str | None) -> bool:
    return bool(a and b) and PurePath(a).name == PurePath(b).name


def at_place(f: Finding, first: FirstNonfinite) -> bool:
    """Whether `f` is about the place where the first non-finite value was seen."""
    loc = f.location
    if loc.line is not None and first.line is not None:
        if _same_file(loc.file, first.file) and loc.line == first.line:
            return True
    if loc.epoch is not None and (loc.epoch, loc.step) == (first.epoch, first.step) and \
            f.severity is Severity.ERROR and f.cause not in TRAINING_CAUSES:
        return True  # measured on the failing step itself (its batch, its loss)
    layer = loc.layer or f.measured.get("layer")
    if first.layer and layer and str(layer).split("/")[-1] == first.layer.split("/")[-1] and \
            first.where in ("forward", "backward", "data"):
        return True
    if f.cause in DATA_CAUSES and first.rows and loc.rows and set(loc.rows) & set(first.rows):
        return True
    if first.where == "data" and f.cause == "data-nonfinite":
        return True
    common = (first.extra.get("rows_in_common") or {}).get("property")
    if (common == "label" and f.cause == "label-out-of-range") or \
            (common == "extreme" and f.cause == "data-unscaled"):
        return True  # what sets the non-finite rows apart is what this finding is about
    if f.location.kind == "optimizer" and first.where == "update" and \
            f.cause not in TRAINING_CAUSES:
        return True  # an optimizer setting, and the update is where the value was born
    return f.cause in TRAINING_CAUSES and f.severity is Severity.ERROR and \
        first.where in ("update", "backward", "forward", "loss")


def confirm(findings: list[Finding], first: FirstNonfinite | None) -> list[Finding]:
    if first is None:
        return findings
    out: list[Finding] = []
    for f in findings:
        if f.severity is not Severity.INFO and at_place(f, first) and not f.confirmed:
            seen = f"epoch {first.epoch}, step {first.step}" if first.step else \
                f"epoch {first.epoch}, validation"
            f = f.with_(severity=Severity.ERROR, confirmed=True, basis="measured",
                        confidence=max(f.confidence, CONFIRMED),
                        evidence=f"{f.evidence} Confirmed in training: the first non-finite "
                                 f"value ({first.where}, {seen}) was born here.")
        out.append(f)
    if not any(f.confirmed for f in out):
        out.append(unexplained(first))
    return out


def unexplained(first: FirstNonfinite) -> Finding:
    where = first.where or "an unknown place"
    parts = [p for p in (f"layer '{first.layer}'" if first.layer else "",
                         f"op {first.op}" if first.op else "",
                         f"{first.file}:{first.line}" if first.file else "") if p]
    at = f" ({', '.join(parts)})" if parts else ""
    when = f"epoch {first.epoch}, step {first.step}" if first.step else \
        f"epoch {first.epoch}, validation"
    rows = f"; the failing batch's rows include {', '.join(map(str, first.rows[:5]))}" \
        if first.rows else ""
    detail = f" {first.detail[0].upper()}{first.detail[1:]}." if first.detail else ""
    return Finding(
        cause="nonfinite-unexplained", severity=Severity.ERROR, confidence=0.5,
        title=f"a non-finite value appeared in the {where} at {when}{at}",
        evidence=(f"Training turned non-finite at {when}, first in the {where}{at}{rows}; "
                  f"no nandoc check could tie it to a known cause.{detail}"),
        location=Location(kind="optimizer" if first.where == "update" else
                          "loss" if first.where == "loss" and not first.layer else "layer",
                          layer=first.layer, op=first.op, file=first.file, line=first.line,
                          rows=tuple(first.rows[:10]) or None, epoch=first.epoch,
                          step=first.step),
        fix="Start where it was first seen: guard or clip the op there, look at the rows it "
            "names, and lower the learning rate (or clip gradients) if it came from the update.",
        measured={"where": first.where},
    )


# What a training step raises -> the cause it confirms.
RAISES = {
    "tensor-python-branch": ("OperatorNotAllowedInGraphError", "truth value",
                             "as a Python `bool`"),
    "input-index-out-of-range": ("is not in [0,",),
    "label-out-of-range": ("Received a label value of",),
}


def confirm_error(findings: list[Finding], error: str | None) -> list[Finding]:
    """A training step that raised what a finding predicts confirms that finding."""
    if not error:
        return findings
    causes = {c for c, marks in RAISES.items() if any(m in error for m in marks)}
    return [f.with_(confirmed=True, severity=Severity.ERROR,
                    evidence=f"{f.evidence} Confirmed in training: the training step raised "
                             f"{error}")
            if f.cause in causes and not f.confirmed else f for f in findings]
