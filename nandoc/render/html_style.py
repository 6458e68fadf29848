"""The HTML report's style sheet, inlined in the page: no web font, no external file; readable
on a phone (tables scroll sideways, the chart shrinks to the screen) and on paper."""

CSS = """
:root { --red: #b3261e; --amber: #8a5a00; --blue: #1f5fa8; --green: #1e7b34; --grey: #5f6368;
  --line: #d9dce1; --soft: #f5f6f8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 70rem; padding: 1rem; color: #1d1d1f; background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; overflow-wrap: anywhere; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 0 0 .4rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
  monospace; font-size: .92em; }
.verdict { border-radius: .5rem; padding: .8rem 1rem; margin: .6rem 0 1rem; font-weight: 600;
  border: 1px solid var(--line); border-left: .45rem solid var(--grey); background: var(--soft); }
.verdict.clean { border-left-color: var(--green); }
.verdict.findings { border-left-color: var(--red); }
.verdict.warn { border-left-color: var(--amber); }
.verdict.incomplete { border-left-color: var(--red); }
.verdict .exit { display: block; font-weight: 400; color: var(--grey); margin-top: .3rem; }
.meta { color: var(--grey); font-size: .9rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; overflow-wrap: normal; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td code { white-space: nowrap; overflow-wrap: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.first-nonfinite td { background: #fde8e7; font-weight: 600; }
tr.nonfinite td { background: #fff4f3; }
.finding { border: 1px solid var(--line); border-left: .35rem solid var(--grey);
  border-radius: .5rem; padding: .8rem 1rem; margin: .8rem 0; break-inside: avoid; }
.finding.error { border-left-color: var(--red); }
.finding.warning { border-left-color: var(--amber); }
.finding.info { border-left-color: var(--blue); }
.badge { display: inline-block; border-radius: .3rem; padding: 0 .45rem; font-size: .8rem;
  font-weight: 700; text-transform: uppercase; color: #fff; background: var(--grey);
  vertical-align: middle; }
.badge.error { background: var(--red); }
.badge.warning { background: var(--amber); }
.badge.info { background: var(--blue); }
.badge.ok { background: var(--green); }
.cause { font-weight: 700; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem;
  margin: .5rem 0 0; }
dl.facts dt { color: var(--grey); }
dl.facts dd { margin: 0; }
ul.plain { margin: .3rem 0; padding-left: 1.2rem; }
.chart { display: block; width: 100%; height: auto; max-width: 60rem; }
figure { margin: .5rem 0; }
figcaption { color: var(--grey); font-size: .9rem; }
footer { margin-top: 2rem; color: var(--grey); font-size: .85rem; }
@media (max-width: 40rem) {
  body { padding: .6rem; font-size: 14px; }
  dl.facts { grid-template-columns: 1fr; gap: 0; }
  dl.facts dt { margin-top: .4rem; }
  th, td { padding: .3rem .4rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .scroll { overflow: visible; }
  .finding, figure, table { break-inside: avoid; }
  h2 { break-after: avoid; }
  .verdict, .finding, tr.first-nonfinite td, th { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
}
"""
