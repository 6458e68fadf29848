"""`nandoc explain` and docs/causes.md, both rendered from the one cause catalogue.

The catalogue (`nandoc.core.causes`) is the single source: the terminal explanation, the
Markdown reference in docs/ and the README table are all read from it, and a test keeps the
generated file in step.
"""

from __future__ import annotations

import difflib
import textwrap

from nandoc.core.causes import ALIASES, CAUSES, TIER_DATA, TIER_DYNAMICS, TIER_EVALUATION, Cause

SECTIONS = (("what", "What it is"), ("why", "Why it makes NaN"), ("confirm", "How to confirm"),
            ("fix", "How to fix"))
TIER_WORDS = {TIER_DATA: "data", TIER_DYNAMICS: "training dynamics",
              TIER_EVALUATION: "evaluation"}


def detectors(cause_id: str) -> list[str]:
    """The ids of the registered checks that can emit `cause_id`."""
    from nandoc.checks import load_all
    from nandoc.core.registry import all_checks

    load_all()
    return [spec.id for spec in all_checks() if cause_id in spec.causes]


def _found_by(cause: Cause, code: str = "") -> str:
    checks = detectors(cause.id)
    if checks:
        return f"Detected by {code}nandoc check{code}: {', '.join(checks)}."
    return (f"Found while training, not from the saved files: by {code}nandoc replay{code}, "
            f"which trains a watched copy, and by the {code}nandoc.keras.NanDoctor{code} "
            f"callback inside your own fit.")


def suggest(unknown: str) -> str:
    """' Did you mean ...?' for a mistyped id, or ''."""
    close = difflib.get_close_matches(unknown, [*CAUSES, *ALIASES], n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def index() -> str:
    """One line per cause: id and summary."""
    width = max(len(c) for c in CAUSES)
    lines = [f"{c.id:<{width}}  {c.summary}" for c in CAUSES.values()]
    lines.append("")
    lines.append("nandoc explain CAUSE prints what it is, why it makes NaN, how to confirm it and "
                 "how to fix it.")
    return "\n".join(lines) + "\n"


def text(cause: Cause, width: int = 88) -> str:
    """The terminal explanation of one cause."""
    out = [f"{cause.id}: {cause.summary}", ""]
    for field, heading in SECTIONS:
        out.append(heading)
        out.extend(textwrap.wrap(getattr(cause, field), width=width, initial_indent="  ",
                                 subsequent_indent="  "))
        out.append("")
    out.append("  Example:")
    out.extend("    " + line for line in cause.example.splitlines())
    out.append("")
    out.extend(textwrap.wrap(_found_by(cause), width=width))
    return "\n".join(out) + "\n"


def markdown_one(cause: Cause) -> str:
    tier = TIER_WORDS.get(cause.tier, "model and loss")
    parts = [f"## `{cause.id}`", "", f"*{cause.summary}* (a {tier} cause)", ""]
    for field, heading in SECTIONS:
        parts += [f"**{heading}.** {getattr(cause, field)}", ""]
    parts += ["```python", cause.example, "```", "", _found_by(cause, "`"), ""]
    return "\n".join(parts)


def markdown() -> str:
    """The whole catalogue as the Markdown reference kept in docs/causes.md."""
    head = [
        "# Causes of NaN that nandoc knows",
        "",
        "Generated from the catalogue in `nandoc/core/causes.py` by `nandoc explain --markdown`;"
        " do not edit by hand.",
        "",
        "| cause | what it is |",
        "| --- | --- |",
        *(f"| [`{c.id}`](#{c.id}) | {c.summary.replace('|', '/')} |" for c in CAUSES.values()),
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(markdown_one(c) for c in CAUSES.values())
