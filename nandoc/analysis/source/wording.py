"""Shared wording of the source checks: where a site is, how code is quoted, what is measured."""

from __future__ import annotations

import re
from typing import Any

from nandoc.analysis.source.analysis import Analysis
from nandoc.analysis.source.sites import Site
from nandoc.core.finding import Location

SUSPECT_NOTE = ("This is a suspect from reading the code, not a measured NaN: running the "
                "model on real values confirms or clears it.")


def quote(text: str, limit: int = 60) -> str:
    """Code on one line, shortened for titles."""
    one = re.sub(r"\s+", " ", text).strip()
    return one if len(one) <= limit else one[: limit - 1] + "…"


def owner_text(site: Site) -> str:
    o = site.owner
    text = f"{o.kind} '{o.name}'"
    if o.via:
        text += f" (reached from '{o.via}')"
    return text


def location(a: Analysis, site: Site) -> Location:
    return Location(kind=site.owner.kind, name=site.owner.name, file=a.path, line=site.line,
                    op=site.op)


def measured(a: Analysis, site: Site, **extra: Any) -> dict[str, Any]:
    """What part 2 needs to re-evaluate the site with real values."""
    out: dict[str, Any] = {
        "function": site.owner.function,
        "expr": a.source(site.node),
        "arg": a.source(site.arg),
        "line": site.line,
        "op": site.op,
    }
    if site.owner.via:
        out["via"] = site.owner.via
    out.update(extra)
    return out


def per_line(sites: tuple[Site, ...] | list[Site]) -> list[list[Site]]:
    """Sites grouped by (cause, owner, line): one finding per line is enough to read."""
    groups: dict[tuple, list[Site]] = {}
    for s in sites:
        groups.setdefault((s.cause, s.owner.name, s.line), []).append(s)
    return list(groups.values())
