"""`--format html`: one self-contained, escaped page. In process from Report objects, plus one
real `nandoc check --format html -o` run through the CLI."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from nandoc.core.finding import FailOn
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.render import Format, render
from tests.conftest import healthy_rows, write_csv
from tests.test_cli import nandoc
from tests.test_formats import REPORT as CHECK_REPORT
from tests.test_plot import HOSTILE, LAYERS, replay_report

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
# An external reference: src/href/xlink:href/url() pointing at http(s) or a protocol-relative
# // URL (no CDN, no web font, no remote image).
EXTERNAL = re.compile(r"""(?:\b(?:src|href|srcset|action|data)\s*=\s*["']?\s*(?:https?:)?//"""
                      r"""|url\(\s*["']?\s*(?:https?:)?//|@import)""", re.I)


class Page(HTMLParser):
    """The page's elements, checked to nest properly (every opened element closed in order)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[tuple[tuple[str, ...], str]] = []  # (open element ids, data)
        self.ids: list[tuple[str, str]] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_startendtag(self, tag, attrs):  # <path .../> in the SVG
        self.elements.append((tag, dict(attrs)))

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag not in VOID:
            self.stack.append(tag)
            self.ids.append((tag, attributes.get("id") or ""))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        self.ids.pop()

    def handle_data(self, data):
        self.text.append((tuple(i for _, i in self.ids if i), data))

    def within(self, element_id: str) -> str:
        return "".join(d for ids, d in self.text if element_id in ids)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements
                if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def page_text() -> str:
    return render(replay_report(), Format.HTML)


@pytest.fixture(scope="module")
def page(page_text) -> Page:
    return Page(page_text)


def test_the_page_parses_and_is_one_self_contained_file(page_text, page):
    assert page.errors == []
    assert page_text.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page_text), EXTERNAL.search(page_text)
    assert page.find("script") == [] and page.find("link") == [] and page.find("img") == []
    assert page.find("meta", charset="utf-8")
    viewport = page.find("meta", name="viewport")
    assert viewport and "width=device-width" in viewport[0]["content"]
    style = page_text[page_text.index("<style>"):page_text.index("</style>")]
    assert "@media print" in style and "@media (max-width" in style and "overflow-x: auto" in style


def test_hostile_text_from_the_users_files_is_escaped(page_text, page):
    assert HOSTILE not in page_text and "<b>there</b>" not in page_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text
    assert page.find("script") == [] and page.find("b") == []
    assert HOSTILE in page.within("finding-1")  # the parsed text reads as the user wrote it
    assert "<b>there</b> & more" in page.within("finding-1")


def test_the_verdict_and_the_rank_1_finding(page):
    verdict = page.find("div", id="verdict")[0]
    assert verdict["data-status"] == "findings" and verdict["data-exit"] == "1"
    assert "exit 1: 1 finding at or above --fail-on error" in page.within("verdict")
    assert "the loss: the model was saved without one" in page.within("not-checked")
    first = page.find("section", id="finding-1")[0]
    assert first["data-cause"] == "data-unscaled" and first["data-severity"] == "error"
    text = " ".join(page.within("finding-1").split())
    for part in ("#1", "data-unscaled", "confidence 0.90", "data.csv", "41, 42, 43",
                 "epoch 3, step 11", "Scale the features.",
                 "StandardScaler on the features: NaN-free over 40 steps",
                 "measured, confirmed in training"):
        assert part in text, part
    assert page.find("section", id="finding-2")[0]["data-cause"] == "exploding-gradients"


def test_the_first_nonfinite_step_the_layer_table_and_the_chart(page_text, page):
    first = " ".join(page.within("first-nonfinite").split())
    assert "epoch 3, step 11" in first and "FusedBatchNormV3" in first
    table = page_text[page_text.index('<table id="layer-table">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr( class=\"[^\"]*\")?><td><code>([^<]*)</code>", table)
    assert [name for _, name in rows] == LAYERS
    assert [cls for cls, _ in rows] == ["", ' class="first-nonfinite"', ' class="nonfinite"']
    assert "25.0%" in table and "inf" in table and "nan" in table
    chart = page.find("svg", id="chart")
    assert len(chart) == 1 and chart[0].get("viewbox")
    assert "width" not in chart[0] and "height" not in chart[0]  # it scales with the page
    assert "gradient norm (L2)" in page.within("chart")
    assert "<?xml" not in page_text and "<!DOCTYPE svg" not in page_text


def test_fixes_inputs_checks_and_timings(page):
    fixes = " ".join(page.within("verified-fixes").split())
    assert "clipnorm=1.0" in fixes and "still non-finite" in fixes
    checks = " ".join(page.within("checks").split())
    assert "1 ran, 1 not applicable, 1 failed" in checks
    assert "ValueError: boom" in checks and "no custom_objects files were given" in checks
    inputs = " ".join(page.within("inputs").split())
    assert "/proj/models/net.keras" in inputs and "800 training, 200 validation" in inputs
    assert HOSTILE in inputs  # the unused column, by name
    assert "total" in page.within("timings") and "4.25 s" in page.within("timings")


def test_a_check_report_without_a_series_has_no_chart_and_its_exit_follows_fail_on():
    text = render(CHECK_REPORT, Format.HTML, fail_on=FailOn.NEVER)
    parsed = Page(text)
    assert parsed.errors == [] and parsed.find("svg") == []
    assert parsed.find("div", id="verdict")[0]["data-exit"] == "0"
    assert "exit 0: no finding at or above --fail-on never" in parsed.within("verdict")
    assert "check broken: ValueError: boom" not in parsed.within("verdict")  # errors explain
    assert "ValueError: boom" in parsed.within("checks")
    assert parsed.find("section", id="finding-1")[0]["data-cause"] == "data-nonfinite"
    clean = Page(render(Report.build("check", "0.1.0", []), Format.HTML))
    assert "exit 0" in clean.within("verdict") and clean.find("section", id="finding-1") == []


def test_an_incomplete_run_says_exit_2_and_what_could_not_be_examined():
    report = Report.build("check", "0.1.0", [], checks=(
        CheckResult("loss-probe", Outcome.FAILED, message="RuntimeError: <boom>"),))
    parsed = Page(render(report, Format.HTML))
    verdict = " ".join(parsed.within("verdict").split())
    assert parsed.find("div", id="verdict")[0]["data-exit"] == "2"
    assert "exit 2: the run is incomplete: check loss-probe: RuntimeError: <boom>" in verdict


def test_check_writes_an_html_report_through_the_cli(tmp_path, models):
    rows = [[*r[:3], "x", r[3]] for r in healthy_rows()]
    rows[4][0] = "nan"
    write_csv(tmp_path / "data.csv", ["a", "b", "c", HOSTILE, "label"], rows)
    (tmp_path / "nandoc.toml").write_text(
        f'[model]\npath = "{models["binary"].as_posix()}"\n'
        '[data]\npath = "data.csv"\ntarget = "label"\nfeatures = ["a", "b", "c"]\n')
    res = nandoc("check", "--config", "nandoc.toml", "--format", "html", "-o", "report.html",
                 cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr
    text = (tmp_path / "report.html").read_bytes().decode("utf-8")
    parsed = Page(text)
    assert parsed.errors == [] and not EXTERNAL.search(text)
    assert parsed.find("section", id="finding-1")[0]["data-cause"] == "data-nonfinite"
    assert HOSTILE not in text and HOSTILE in parsed.within("inputs")
