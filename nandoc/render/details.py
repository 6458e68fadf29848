"""The text report's quiet form (the verdict alone) and its verbose appendix (how each check
fared and why, what was read, how long it took)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nandoc.core.report import Outcome, Report
from nandoc.render.text import verdict


def _console(buf: io.StringIO, color: bool, width: int) -> Console:
    return Console(file=buf, force_terminal=color, no_color=not color, width=width,
                   highlight=False, emoji=False)


def quiet(report: Report, *, color: bool = False, width: int = 100) -> str:
    """The verdict line, plus one line per check that could not run (those are errors too)."""
    buf = io.StringIO()
    console = _console(buf, color, width)
    style, line = verdict(report)
    console.print(Text(line, style=style), soft_wrap=True)  # one line, never cut
    for c in report.failed_checks():
        console.print(Text(f"check {c.check} could not run: {c.message}", style="magenta"))
    return buf.getvalue()


def _value(v: object) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) if v else "none"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items())
    return str(v)


def render(report: Report, *, color: bool = False, width: int = 100) -> str:
    """Every check with its outcome (the reason when it did not run), the inputs, the timings."""
    buf = io.StringIO()
    console = _console(buf, color, width)
    console.print()
    console.print(Text("Checks", style="bold"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for c in report.checks:
        if c.outcome is Outcome.RAN:
            note = f"{c.findings} finding{'s' if c.findings != 1 else ''}"
        else:
            note = c.message
        style = {Outcome.RAN: "", Outcome.NOT_APPLICABLE: "dim",
                 Outcome.FAILED: "magenta"}[c.outcome]
        grid.add_row(Text(c.check, style=style), c.outcome.value, Text(note))
    console.print(grid)
    extra = {k: v for k, v in report.extra.items() if isinstance(v, (dict, list, str, int,
                                                                       float))}
    if report.inputs or extra:
        console.print()
        console.print(Text("Inputs", style="bold"))
        rows = Table.grid(padding=(0, 2))
        rows.add_column(style="dim", no_wrap=True)
        rows.add_column(overflow="fold")
        for key, value in {**report.inputs, **extra}.items():
            rows.add_row(key.replace("_", " "), Text(_value(value)))
        console.print(rows)
    if report.timings:
        console.print()
        parts = [f"{k.removesuffix('_s')} {v:.2f}s" for k, v in report.timings.items()]
        console.print(Text("Timings  " + " · ".join(parts), style="dim"))
    return buf.getvalue()
