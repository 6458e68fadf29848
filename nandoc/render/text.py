"""The terminal report: a one-line verdict, then each finding ranked with where, evidence, fix."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from nandoc.core.evidence import sparkline
from nandoc.core.finding import Finding, Severity
from nandoc.core.report import Outcome, Report

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}


def verdict(report: Report) -> tuple[str, str]:
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    infos = report.count(Severity.INFO)
    if report.status == "incomplete":
        missed = report.not_examined()
        shown = "; ".join(missed[:2]) + (f"; and {len(missed) - 2} more" if len(missed) > 2
                                          else "")
        lead = (f"{len(report.findings)} warning(s) or note(s) below, " if report.findings
                else "")
        return "bold red", (f"✘ Incomplete: not everything could be examined ({shown}); "
                            f"{lead}no verdict on the rest.")
    limits = report.scope_limits()
    if not report.findings:
        if limits:
            return "bold green", (f"✔ No NaN risk found in what was checked; not checked: "
                                  f"{', '.join(limits)}.")
        return "bold green", "✔ No NaN risk found."
    head = report.findings[0]
    counts = ", ".join(p for p in (
        f"{errors} error{'s' if errors != 1 else ''}" if errors else "",
        f"{warnings} warning{'s' if warnings != 1 else ''}" if warnings else "",
        f"{infos} note{'s' if infos != 1 else ''}" if infos else "") if p)
    if errors:
        return "bold red", f"✘ {counts}. Most likely root cause: {head.cause} — {head.title}"
    scope = f" (Not checked: {', '.join(limits)}.)" if limits else ""
    return "bold yellow", f"⚠ {counts}. Top suspect: {head.cause} — {head.title}{scope}"


def _finding(console: Console, rank: int, f: Finding) -> None:
    style = STYLE[f.severity]
    head = Text.assemble((f"#{rank} ", "bold"), (f"{f.severity.value.upper():7} ", style),
                         (f.cause, "bold"), (f"  confidence {f.confidence:.2f}", "dim"))
    console.print(head)
    console.print(Padding(Text(f.title, style="bold"), (0, 0, 0, 3)))
    rows = [("where", f.location.short()), ("evidence", f.evidence), ("fix", f.fix)]
    if f.verified_fix is not None:
        v = f.verified_fix
        ok = "NaN-free" if v.nan_free else "still NaN"
        rows.append(("verified", f"{v.change}: {ok} over {v.steps_ran} steps"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, Text(value))
    console.print(Padding(grid, (0, 0, 0, 2)))
    console.print()


def _first_line(first) -> Text:
    where = f"{first.where}"
    if first.layer:
        where += f" in layer '{first.layer}'"
    if first.op:
        where += f", op {first.op}"
    if first.file:
        where += f" at {first.file}:{first.line}"
    rows = list(first.rows)
    step = f"step {first.step}" if first.step else "validation"
    return Text.assemble(("first non-finite  ", "bold red"),
                         f"epoch {first.epoch}, {step}: {where}",
                         f" (rows {', '.join(map(str, rows[:5]))})" if rows else "")


def _training_block(console: Console, report: Report) -> None:
    """What watched training saw (replay, or check's burst): where it stopped, and for replay
    the run up to there."""
    summary = report.extra.get("replay") or report.extra.get("burst")
    first = report.first_nonfinite
    if not summary:
        if first is not None:  # the callback's report
            console.print(_first_line(first))
            console.print()
        return
    what = "replay" if "replay" in report.extra else "training burst"
    ran = summary.get("steps_ran", 0)
    if first is not None:
        console.print(_first_line(first))
    elif summary.get("stopped_by") == "error":
        console.print(Text.assemble((f"{what} stopped  ", "bold red"),
                                    f"the train step raised {summary.get('error', '')}"))
    else:
        console.print(Text(f"{what}: {ran} steps, no non-finite value "
                           f"({summary.get('stopped_by')})", style="green"))
    snapshot = report.extra.get("snapshot")
    if snapshot:  # the restore copy was not the whole state on the device: where, and why
        said = f"{snapshot.get('where')}: {snapshot.get('why')}"
        if snapshot.get("rewound"):
            said += f"; rewound to the last finite weights: {snapshot['rewound']}"
        console.print(Text.assemble(("snapshot  ", "dim"), said))
    series = summary.get("series", {})
    for name in ("loss", "grad_norm"):
        values = [v if v is not None else float("nan") for v in series.get(name, [])]
        if values:
            console.print(Text.assemble((f"{name.replace('_', ' '):>9}  ", "dim"),
                                        sparkline(values, width=60)))
    console.print()


def render(report: Report, *, color: bool = False, width: int = 100) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=width,
                      highlight=False, emoji=False)
    style, line = verdict(report)
    console.print(Text(line, style=style))
    inputs = report.inputs
    if inputs:
        parts = [f"{k}: {escape(str(v))}" for k, v in inputs.items() if k in ("model", "data")]
        if "train_samples" in inputs:
            val = inputs.get("validation_samples")
            parts.append(f"{inputs['train_samples']} training samples"
                         + (f", {val} validation" if val is not None else ""))
        if parts:
            console.print(Text("  " + " · ".join(parts), style="dim"))
    rows = [("not checked", "bold yellow", item) for item in report.not_checked]
    rows += [("not used", "yellow", u["why"]) for u in inputs.get("unused_columns", ())]
    rows += [("read", "dim", note) for note in inputs.get("data_notes", ())]
    if rows:  # what a clean verdict does not cover, columns left out, how the file was read
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for label, style, item in rows:
            grid.add_row(Text(label, style=style), Text(item))
        console.print(grid)
    console.print()
    _training_block(console, report)
    for rank, finding in enumerate(report.findings, start=1):
        _finding(console, rank, finding)
    failed = [c for c in report.checks if c.outcome is Outcome.FAILED]
    for c in failed:
        console.print(Text(f"check {c.check} could not run: {c.message}", style="magenta"))
    skipped = sum(1 for c in report.checks if c.outcome is Outcome.NOT_APPLICABLE)
    ran = sum(1 for c in report.checks if c.outcome is Outcome.RAN)
    total = report.timings.get("total_s")
    tail = f"{ran} checks ran, {skipped} not applicable, {len(failed)} failed"
    if total is not None:
        tail += f" · {total:.1f}s"
    console.print(Text(tail, style="dim"))
    # rich pads table cells to the column width: no line of the report ends in spaces.
    return "".join(line.rstrip(" ") + "\n" for line in buf.getvalue().splitlines())
