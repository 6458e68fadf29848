"""Renderers: one pure function per output format, from a Report to text."""

from __future__ import annotations

from enum import Enum
from typing import Callable

from nandoc.core.report import Report


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"


def renderer(fmt: Format) -> Callable[..., str]:
    """The render function for `fmt`; every Format member is mapped (a test loops over them)."""
    from nandoc.render import json as json_render
    from nandoc.render import text as text_render

    table: dict[Format, Callable[..., str]] = {
        Format.TEXT: text_render.render,
        Format.JSON: json_render.render,
    }
    return table[fmt]


def render(report: Report, fmt: Format, *, color: bool = False, width: int = 100) -> str:
    fn = renderer(fmt)
    if fmt is Format.TEXT:
        return fn(report, color=color, width=width)
    return fn(report)
