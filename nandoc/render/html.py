"""The HTML report (`--format html`): one self-contained page, the style sheet and the charts
(inline SVG from the same matplotlib code as `--plot`) inside it, no external reference.

Everything taken from the report is escaped: column names, evidence and paths come from the
user's files. The sections: the verdict and what the exit code means, what was read and what
was not checked, where training first turned non-finite (with the failing batch's per-layer
table and the curves), the ranked findings, the verified fixes, how each check fared, timings.
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

from nandoc.core.finding import FailOn, Finding, Location
from nandoc.core.report import Outcome, Report
from nandoc.render.html_style import CSS


def e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if (v == 0 or 1e-3 <= abs(v) < 1e5) else f"{v:.3e}"
    return str(v)


def _table(head: list[str], rows: list[tuple[str, list[str]]], num: set[int] = frozenset()
           ) -> str:
    """A scrollable table; `rows` are (tr class, already escaped cells)."""
    th = "".join(f"<th scope=\"col\">{e(h)}</th>" for h in head)
    body = []
    for cls, cells in rows:
        tds = "".join(f"<td class=\"num\">{c}</td>" if i in num else f"<td>{c}</td>"
                      for i, c in enumerate(cells))
        attr = f" class=\"{e(cls)}\"" if cls else ""
        body.append(f"<tr{attr}>{tds}</tr>")
    return (f"<div class=\"scroll\"><table><thead><tr>{th}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _facts(pairs: list[tuple[str, str]]) -> str:
    """A definition list of (label, already escaped value), the empty values left out."""
    items = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs if v)
    return f"<dl class=\"facts\">{items}</dl>" if items else ""


def _section(sid: str, heading: str, body: str) -> str:
    return f"<section id=\"{sid}\"><h2>{e(heading)}</h2>{body}</section>"


def _rows(rows: Any, limit: int = 20) -> str:
    rows = list(rows or ())
    shown = ", ".join(e(r) for r in rows[:limit])
    return shown + (f" … and {len(rows) - limit} more" if len(rows) > limit else "")


# -- the verdict -------------------------------------------------------------------------------


def _exit_meaning(report: Report, fail_on: FailOn) -> str:
    code = report.exit_code(fail_on)
    if code == 1:
        n = sum(1 for f in report.findings if fail_on.is_failing(f.severity))
        return (f"exit 1: {n} finding{'s' if n != 1 else ''} at or above --fail-on "
                f"{fail_on.value}")
    if code == 2:
        return "exit 2: the run is incomplete: " + "; ".join(report.not_examined())
    if report.findings:
        return f"exit 0: no finding at or above --fail-on {fail_on.value}"
    return "exit 0: every applicable check ran and nothing non-finite was seen"


def _verdict(report: Report, fail_on: FailOn) -> str:
    from nandoc.render.text import verdict

    _, line = verdict(report)
    cls = report.status
    if cls == "findings" and not any(f.severity.value == "error" for f in report.findings):
        cls = "warn"
    return (f"<div class=\"verdict {cls}\" id=\"verdict\" data-status=\"{e(report.status)}\" "
            f"data-exit=\"{report.exit_code(fail_on)}\">{e(line)}"
            f"<span class=\"exit\">status <code>{e(report.status)}</code> · "
            f"{e(_exit_meaning(report, fail_on))}</span></div>")


def _inputs(report: Report) -> str:
    inputs = dict(report.inputs)
    pairs: list[tuple[str, str]] = []
    for key in ("model", "data", "validation_data"):
        if inputs.get(key):
            pairs.append((key.replace("_", " "), f"<code>{e(inputs.pop(key))}</code>"))
    if "train_samples" in inputs:
        val = inputs.pop("validation_samples", None)
        pairs.append(("samples", e(f"{inputs.pop('train_samples')} training"
                                   + (f", {val} validation" if val is not None else ""))))
    unused = inputs.pop("unused_columns", None) or []
    notes = inputs.pop("data_notes", None) or []
    for key, value in inputs.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) if value else "none"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        pairs.append((key.replace("_", " "), e(value)))
    out = [_facts(pairs)]
    if unused:
        out.append("<h3>Columns not used</h3>")
        out.append(_table(["column", "why"], [("", [f"<code>{e(u.get('column', ''))}</code>",
                                                     e(u.get("why", ""))])
                                              for u in unused if isinstance(u, dict)]))
    if notes:
        out.append("<h3>How the data was read</h3><ul class=\"plain\">"
                   + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    return _section("inputs", "What was read", "".join(out)) if len(out) > 1 or pairs else ""


def _not_checked(report: Report) -> str:
    """What a verdict does not cover, next to it."""
    if not report.not_checked:
        return ""
    return ("<div id=\"not-checked\"><strong>Not checked</strong><ul class=\"plain\">"
            + "".join(f"<li>{e(n)}</li>" for n in report.not_checked) + "</ul></div>")


# -- training: the first non-finite step, the failing batch, the curves ------------------------


def _first(report: Report) -> str:
    first = report.first_nonfinite
    summary = report.extra.get("replay") or report.extra.get("burst") or {}
    what = "replay" if "replay" in report.extra else "training burst"
    out = []
    if first is not None:
        where = f"<code>{e(first.file)}:{e(first.line)}</code>" if first.file else ""
        step = f"step {first.step}" if first.step else "validation"
        out.append(_facts([
            ("when", e(f"epoch {first.epoch}, {step}")),
            ("where", e(first.where or "")), ("layer", e(first.layer or "")),
            ("op", f"<code>{e(first.op)}</code>" if first.op else ""), ("source", where),
            ("rows", _rows(first.rows)), ("what was seen", e(first.detail or ""))]))
    elif summary:
        ran = summary.get("steps_ran", 0)
        if summary.get("stopped_by") == "error":
            out.append(f"<p>The {what} stopped: the train step raised "
                       f"<code>{e(summary.get('error', ''))}</code>.</p>")
        else:
            out.append(f"<p>The {what} ran {e(ran)} steps without a non-finite value "
                       f"(stopped by: {e(summary.get('stopped_by', ''))}).</p>")
    if summary:
        facts = [(k.replace("_", " "), e(summary[k])) for k in
                 ("steps_ran", "steps_per_epoch", "stopped_by", "seen_in") if k in summary]
        out.append(f"<p class=\"meta\">{what}: "
                   + " · ".join(f"{k} {v}" for k, v in facts) + "</p>")
    snapshot = report.extra.get("snapshot")
    if isinstance(snapshot, dict):  # the restore copy was not the whole state on the device
        rewound = (f" Rewound to the last finite weights: {e(snapshot['rewound'])}."
                   if snapshot.get("rewound") else "")
        out.append(f"<p class=\"meta\">snapshot {e(snapshot.get('where', ''))}: "
                   f"{e(snapshot.get('why', ''))}.{rewound}</p>")
    if not out:
        return ""
    return _section("first-nonfinite", "First non-finite value", "".join(out))


def _failing_batch(report: Report) -> str:
    batch = report.extra.get("failing_batch")
    if not isinstance(batch, dict) or not batch.get("layers"):
        return ""
    layers = [r for r in batch["layers"] if isinstance(r, dict)]
    first_bad = next((i for i, r in enumerate(layers) if _bad(r)), None)
    rows = []
    for i, r in enumerate(layers):
        frac = r.get("finite_fraction")
        frac_s = f"{frac:.1%}" if isinstance(frac, (int, float)) and math.isfinite(frac) \
            else _num(frac)
        cls = "first-nonfinite" if i == first_bad else ("nonfinite" if _bad(r) else "")
        rows.append((cls, [f"<code>{e(r.get('layer', ''))}</code>", e(frac_s),
                           e(_num(r.get("max_abs"))), e(_num(r.get("grad_norm")))]))
    where = f"epoch {batch.get('epoch')}, step {batch.get('step')}"
    rows_note = f"; rows {_rows(batch.get('rows'))}" if batch.get("rows") else ""
    lead = (f"<p>Each layer's output on the batch that failed ({e(where)}{rows_note}); "
            f"the first layer with a non-finite value is highlighted. — : no finite value, "
            f"or no weights or gradient to measure.</p>")
    table = _table(["layer", "finite fraction", "max finite |value|", "gradient norm"], rows,
                   num={1, 2, 3}).replace("<table>", "<table id=\"layer-table\">", 1)
    return _section("failing-batch", "The failing batch, layer by layer", lead + table)


def _bad(row: dict) -> bool:
    frac, top = row.get("finite_fraction"), row.get("max_abs")
    return ((isinstance(frac, (int, float)) and frac < 1)
            or (isinstance(top, float) and not math.isfinite(top))
            or (isinstance(row.get("grad_norm"), float) and not math.isfinite(row["grad_norm"])))


_XML_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')


def chart_svg(report: Report) -> str:
    """The curves as an inline SVG element: no XML prolog, no DTD link, no metadata; it
    scales to the page's width (CSS) from its viewBox."""
    from nandoc.render import plot

    if not plot.curves(report).drawable:
        return ""
    svg = _METADATA.sub("", _XML_HEAD.sub("", plot.render_svg(report), count=1), count=1)
    head, _, rest = svg.partition(">")
    head = _SIZE.sub("", head)
    return (f"{head} class=\"chart\" id=\"chart\" role=\"img\" aria-label=\"training curves: loss "
            f"and gradient norm per step\">{rest}")


def _curves(report: Report) -> str:
    from nandoc.render import plot

    svg = chart_svg(report)
    if not svg:
        return ""
    data = plot.curves(report)
    parts = []
    if data.has_series:
        parts.append("Loss and gradient norm per step up to the first non-finite value (red "
                     "dashed line), sampled evenly over the run.")
    if data.layers:
        parts.append("Each layer's gradient norm on the failing step; red: not finite.")
    return _section("curves", "Training curves", "<figure>" + svg + "<figcaption>"
                    + e(" ".join(parts)) + "</figcaption></figure>")


# -- findings, fixes, checks, timings ----------------------------------------------------------


def _location(loc: Location) -> list[tuple[str, str]]:
    src = f"{loc.file}:{loc.line}" if loc.file and loc.line else (loc.file or "")
    when = ", ".join(p for p in (f"epoch {loc.epoch}" if loc.epoch is not None else "",
                                 f"step {loc.step}" if loc.step is not None else "") if p)
    return [("where", e(loc.kind)), ("file", f"<code>{e(src)}</code>" if src else ""),
            ("name", e(loc.name or "")), ("layer", e(loc.layer or "")),
            ("op", f"<code>{e(loc.op)}</code>" if loc.op else ""),
            ("column", f"<code>{e(loc.column)}</code>" if loc.column else ""),
            ("rows", _rows(loc.rows)), ("lines", _rows(loc.lines)), ("when", e(when))]


def _finding(rank: int, f: Finding) -> str:
    sev = f.severity.value
    pairs = [*_location(f.location), ("evidence", e(f.evidence)), ("fix", e(f.fix))]
    if f.verified_fix is not None:
        v = f.verified_fix
        ok = "NaN-free" if v.nan_free else "still non-finite"
        pairs.append(("verified fix", e(f"{v.change}: {ok} over {v.steps_ran} steps")))
    basis = f.basis + (", confirmed in training" if f.confirmed else "")
    pairs.append(("basis", e(basis)))
    if f.check:
        pairs.append(("check", f"<code>{e(f.check)}</code>"))
    return (f"<section class=\"finding {sev}\" id=\"finding-{rank}\" data-rank=\"{rank}\" "
            f"data-cause=\"{e(f.cause)}\" data-severity=\"{sev}\">"
            f"<h3>#{rank} <span class=\"badge {sev}\">{sev}</span> "
            f"<code class=\"cause\">{e(f.cause)}</code> "
            f"<span class=\"meta\">confidence {f.confidence:.2f}</span></h3>"
            f"<p><strong>{e(f.title)}</strong></p>{_facts(pairs)}</section>")


def _findings(report: Report) -> str:
    if not report.findings:
        return _section("findings", "Findings", "<p>No finding.</p>")
    return _section("findings", "Findings, most likely root cause first",
                    "".join(_finding(i, f) for i, f in enumerate(report.findings, start=1)))


def _fixes(report: Report) -> str:
    rows = []
    for i, f in enumerate(report.findings, start=1):
        v = f.verified_fix
        if v is not None:
            badge = ("<span class=\"badge ok\">NaN-free</span>" if v.nan_free
                     else "<span class=\"badge error\">still non-finite</span>")
            rows.append(("", [f"#{i} <code>{e(f.cause)}</code>", e(v.change), badge,
                              e(v.steps_ran)]))
    if not rows:
        return ""
    return _section("verified-fixes", "Verified fixes",
                    "<p>The failing steps re-run with each change applied.</p>"
                    + _table(["finding", "change", "outcome", "steps"], rows, num={3}))


def _checks(report: Report) -> str:
    if not report.checks:
        return ""
    label = {Outcome.RAN: "ran", Outcome.NOT_APPLICABLE: "not applicable",
             Outcome.FAILED: "failed"}
    order = {Outcome.FAILED: 0, Outcome.RAN: 1, Outcome.NOT_APPLICABLE: 2}
    rows = []
    for c in sorted(report.checks, key=lambda c: order[c.outcome]):
        note = (f"{c.findings} finding{'s' if c.findings != 1 else ''}"
                if c.outcome is Outcome.RAN else c.message)
        cls = {Outcome.FAILED: "first-nonfinite", Outcome.NOT_APPLICABLE: "",
               Outcome.RAN: ""}[c.outcome]
        rows.append((cls, [f"<code>{e(c.check)}</code>", e(label[c.outcome]), e(note)]))
    counts = {o: sum(1 for c in report.checks if c.outcome is o) for o in Outcome}
    summary = (f"{counts[Outcome.RAN]} ran, {counts[Outcome.NOT_APPLICABLE]} not applicable, "
               f"{counts[Outcome.FAILED]} failed")
    return _section("checks", "Checks", f"<p class=\"meta\">{e(summary)}</p>"
                    + _table(["check", "outcome", "result or reason"], rows))


def _timings(report: Report) -> str:
    if not report.timings:
        return ""
    rows = [("", [e(k.removesuffix("_s").replace("_", " ")), e(f"{v:.2f} s")])
            for k, v in report.timings.items() if isinstance(v, (int, float))]
    return _section("timings", "Timings", _table(["stage", "time"], rows, num={1}))


def render(report: Report, *, fail_on: FailOn = FailOn.ERROR) -> str:
    title = f"nandoc {report.command} report"
    model = report.inputs.get("model")
    if model:
        title += f": {model}"
    body = "".join([
        f"<header><h1>{e(title)}</h1>", _verdict(report, fail_on), _not_checked(report),
        "</header><main>", _findings(report), _first(report), _failing_batch(report),
        _curves(report), _fixes(report), _inputs(report), _checks(report), _timings(report),
        f"</main><footer>nandoc {e(report.version)} · <code>nandoc {e(report.command)}</code>"
        f" · report schema as in <code>--format json</code></footer>"])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"color-scheme\" content=\"light\">"
            f"<meta name=\"generator\" content=\"nandoc {e(report.version)}\">"
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
