"""`nandoc explain` and docs/causes.md, both rendered from the one cause catalogue.

The catalogue (`nandoc.core.causes`) is the single source: the terminal explanation, the
Markdown reference in docs/ and the README table are all read from it, and a test keeps the
generated file in step. Which checks detect a cause comes from the driver (`checks`: the
registry's `checks_emitting(cause_id)` once `nandoc.checks.load_all()` has run), so this module
reads nothing but the core.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Mapping, Sequence

from nandoc.core.causes import ALIASES, CAUSES, TIER_DATA, TIER_DYNAMICS, TIER_EVALUATION, Cause
from nandoc.core.registry import CheckSpec

SECTIONS = (("what", "What it is"), ("why", "Why it makes NaN"), ("confirm", "How to confirm"),
            ("fix", "How to fix"))
TIER_WORDS = {TIER_DATA: "data", TIER_DYNAMICS: "training dynamics",
              TIER_EVALUATION: "evaluation"}


def _module_path(module: str) -> str:
    """nandoc.checks.data.nonfinite -> nandoc/checks/data/nonfinite.py"""
    return module.replace(".", "/") + ".py"


def _found_by(cause: Cause, checks: Sequence[CheckSpec], code: str = "") -> str:
    """Which checks detect `cause` and the file each is defined in; `checks` comes from the
    driver (the registry, once the check modules are loaded)."""
    if checks:
        by_module: dict[str, list[str]] = {}
        for spec in checks:
            by_module.setdefault(spec.module, []).append(spec.id)
        named = "; ".join(f"{', '.join(ids)} ({code}{_module_path(module)}{code})" if module
                          else ", ".join(ids) for module, ids in by_module.items())
        return f"Detected by {code}nandoc check{code}: {named}."
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


def text(cause: Cause, checks: Sequence[CheckSpec], width: int = 88) -> str:
    """The terminal explanation of one cause; `checks`: the checks that can emit it."""
    out = [f"{cause.id}: {cause.summary}", ""]
    for field, heading in SECTIONS:
        out.append(heading)
        out.extend(textwrap.wrap(getattr(cause, field), width=width, initial_indent="  ",
                                 subsequent_indent="  "))
        out.append("")
    out.append("  Example:")
    out.extend("    " + line for line in cause.example.splitlines())
    out.append("")
    out.extend(textwrap.wrap(_found_by(cause, checks), width=width, break_on_hyphens=False))
    return "\n".join(out) + "\n"


def markdown_one(cause: Cause, checks: Sequence[CheckSpec]) -> str:
    """One cause as a section of docs/causes.md; `checks`: the checks that can emit it."""
    tier = TIER_WORDS.get(cause.tier, "model and loss")
    parts = [f"## `{cause.id}`", "", f"*{cause.summary}* (a {tier} cause)", ""]
    for field, heading in SECTIONS:
        parts += [f"**{heading}.** {getattr(cause, field)}", ""]
    parts += ["```python", cause.example, "```", "", _found_by(cause, checks, "`"), ""]
    return "\n".join(parts)


def markdown(checks: Mapping[str, Sequence[CheckSpec]]) -> str:
    """The whole catalogue as the Markdown reference kept in docs/causes.md; `checks`: cause id
    -> the checks that can emit it."""
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
    return "\n".join(head) + "\n" + "\n".join(markdown_one(c, checks.get(c.id, ()))
                                           for c in CAUSES.values())
