"""GitHub Actions workflow commands: one annotation per finding, on the file and line it names.

`::error file=F,line=L,title=T::message` (`::warning`, `::notice` by severity). Escaping follows
actions/toolkit's command.ts: `%`, CR and LF in the message; those and `:` and `,` in property
values. A data finding points at the data file and, for a text file, the line of its first
bad row; a loss finding at the custom-objects file and line; a layer finding at the model
file. Paths are written relative to
`base_dir` (the working directory, which is the repository root in a workflow) when they lie
under it. A finding with no file still annotates the run. The last line, a plain log line, is
the verdict.
"""

from __future__ import annotations

from pathlib import PurePath

from nandoc.core.finding import Finding, Severity
from nandoc.core.report import Report

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: object) -> str:
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items()
                     if v is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def _file(f: Finding, report: Report, base_dir: PurePath | None) -> str | None:
    name = f.location.file
    if not name and f.location.kind == "layer":
        name = report.inputs.get("model")  # a layer lives in the model file
    if not name or name.startswith("<"):  # in-memory arrays: no file to point at
        return None
    path = PurePath(name)
    if not path.is_absolute():
        # Data checks name the file by its base name; the report's inputs hold its full path.
        data = report.inputs.get("data")
        if data and len(path.parts) == 1 and PurePath(data).name == name:
            path = PurePath(data)
    if base_dir is not None and path.is_absolute() and base_dir.is_absolute():
        try:
            path = path.relative_to(base_dir)
        except ValueError:
            pass
    return path.as_posix()


def _line(f: Finding) -> int | None:
    loc = f.location
    if loc.lines:
        return loc.lines[0]
    return loc.line


def annotation(rank: int, f: Finding, report: Report, base_dir: PurePath | None) -> str:
    file = _file(f, report, base_dir)
    where = f.location.short()
    message = "\n".join([f.title, f"Where: {where}", f"Evidence: {f.evidence}", f"Fix: {f.fix}"])
    return command(LEVEL[f.severity], message, file=file, line=_line(f) if file else None,
                   title=f"nandoc #{rank} {f.cause} ({f.severity.value})")


def render(report: Report, *, base_dir: PurePath | None = None) -> str:
    from nandoc.render.text import verdict

    lines = [annotation(rank, f, report, base_dir)
             for rank, f in enumerate(report.findings, start=1)]
    for c in report.failed_checks():
        lines.append(command("warning", f"The check could not run: {c.message}",
                             title=f"nandoc check {c.check} could not run"))
    for item in report.not_checked:  # a clean run does not cover these: say so on the run
        what, _, why = item.partition(": ")
        lines.append(command("notice", f"nandoc did not check {what}: {why}",
                             title=f"nandoc: {what} not checked"))
    lines.append(f"nandoc {report.command}: {verdict(report)[1]}")
    return "\n".join(lines) + "\n"
