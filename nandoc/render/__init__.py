"""Renderers: one pure function per output format, from a Report and RenderOptions to text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import PurePath
from typing import Any

from nandoc.core.finding import FailOn
from nandoc.core.report import Report


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    GITHUB = "github"
    HTML = "html"


QUIET, NORMAL, VERBOSE = -1, 0, 1


@dataclass(frozen=True)
class RenderOptions:
    """Everything a renderer may depend on besides the report: nothing is read from globals."""

    color: bool = False
    width: int = 100
    fail_on: FailOn = FailOn.ERROR  # junit: findings at or above it are <failure>s
    verbosity: int = NORMAL  # QUIET: the verdict only; VERBOSE: checks, reasons, timings
    base_dir: PurePath | None = None  # github: file paths are written relative to it


Renderer = Callable[[Report, RenderOptions], str]


def _text(report: Report, options: RenderOptions) -> str:
    from nandoc.render import details, text

    if options.verbosity <= QUIET:
        return details.quiet(report, color=options.color)
    out = text.render(report, color=options.color, width=options.width)
    if options.verbosity >= VERBOSE:
        out += details.render(report, color=options.color, width=options.width)
    return out


def _json(report: Report, options: RenderOptions) -> str:
    from nandoc.render import json as json_render

    return json_render.render(report)


def _junit(report: Report, options: RenderOptions) -> str:
    from nandoc.render import junit

    return junit.render(report, fail_on=options.fail_on)


def _github(report: Report, options: RenderOptions) -> str:
    from nandoc.render import github

    return github.render(report, base_dir=options.base_dir)


def _html(report: Report, options: RenderOptions) -> str:
    from nandoc.render import html

    return html.render(report, fail_on=options.fail_on)


_TABLE: dict[Format, Renderer] = {
    Format.TEXT: _text,
    Format.JSON: _json,
    Format.JUNIT: _junit,
    Format.GITHUB: _github,
    Format.HTML: _html,
}


def renderer(fmt: Format) -> Renderer:
    """The render function for `fmt`; every Format member is mapped (a test loops over them)."""
    return _TABLE[fmt]


def render(report: Report, fmt: Format, options: RenderOptions | None = None,
           **overrides: Any) -> str:
    """`render(report, Format.TEXT, color=True)` or with a RenderOptions; keywords win."""
    options = replace(options or RenderOptions(), **overrides)
    return renderer(fmt)(report, options)


def color_wanted(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to a non-empty value
    (no-color.org). The one rule for the CLI and the callback's printed report."""
    import os

    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
