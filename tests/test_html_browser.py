"""The HTML report in a real browser (Chromium through Playwright): every sample's report opens
from file:// with no console error, its rank-1 cause reads as the JSON report's, and the chart
is drawn at a real size.

Skipped unless `pip install playwright` and a system Chromium (`apt-get install chromium`) are
present: Playwright's own browser download is not used. Run it with
`pytest tests/test_html_browser.py`.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.test_cli import nandoc
from tests.test_plot import replay_report

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)
if CHROMIUM is None:
    pytest.skip("no system Chromium (apt-get install chromium)", allow_module_level=True)

# sample -> the rank-1 cause its check report must show (tests/test_samples.py ranks them)
SAMPLE_TOP = {"conv1d_timeseries": "data-unscaled", "sparse_events_loss": None,
              "where_trap_loss": "where-gradient-trap", "healthy": None}
# every model-family sample too (sample_configs/families): its rank-1 cause is read from its
# own JSON report
SAMPLE_TOP |= {f"families/{p.parent.name}": None
               for p in sorted((SAMPLES / "families").glob("*/nandoc.toml"))}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[Path, dict | None]]:
    """Each sample's check report as HTML and as JSON (all run concurrently), plus an
    in-process replay report with curves and the failing batch's layer table."""
    import json

    d = tmp_path_factory.mktemp("html")

    def run(job: tuple[str, str]):
        sample, fmt = job
        out = d / f"{sample.replace('/', '-')}.{fmt}"
        res = nandoc("check", "--config", SAMPLES / sample / "nandoc.toml", "--format", fmt,
                     "--output", out)
        assert res.returncode in (0, 1), res.stderr
        assert "Traceback" not in res.stderr
        return out

    jobs = [(sample, fmt) for sample in SAMPLE_TOP for fmt in ("html", "json")]
    with ThreadPoolExecutor(3) as pool:  # each run holds TensorFlow: a few at a time
        outs = list(pool.map(run, jobs))
    found: dict[str, tuple[Path, dict | None]] = {
        sample: (outs[2 * i], json.loads(outs[2 * i + 1].read_text(encoding="utf-8")))
        for i, sample in enumerate(SAMPLE_TOP)}
    from nandoc.render import Format, render

    replay = d / "replay.html"
    replay.write_text(render(replay_report(), Format.HTML), encoding="utf-8")
    found["replay"] = (replay, None)
    return found


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path: Path, width: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: errors.append(f"request {r.url}")
            if not r.url.startswith(("file:", "data:", "about:")) else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors


@pytest.mark.parametrize("sample", [*SAMPLE_TOP, "replay"])
def test_the_report_opens_without_errors_and_shows_its_rank_1_cause(browser, pages, sample):
    path, doc = pages[sample]
    page, errors = open_page(browser, path)
    try:
        assert errors == []
        status = page.locator("#verdict").get_attribute("data-status")
        if doc is None:  # the in-process replay report
            expected = "data-unscaled"
        else:
            assert doc["status"] == status
            expected = doc["findings"][0]["cause"] if doc["findings"] else None
            if SAMPLE_TOP[sample]:
                assert expected == SAMPLE_TOP[sample]
        if expected is None:
            assert page.locator("#finding-1").count() == 0 and status == "clean"
        else:
            top = page.locator("#finding-1")
            assert top.get_attribute("data-cause") == expected
            assert top.locator("code.cause").inner_text() == expected
            assert top.is_visible()
    finally:
        page.close()


def test_the_chart_and_the_layer_table_are_drawn_on_a_phone_and_a_desktop(browser, pages):
    for width in (1000, 375):
        page, errors = open_page(browser, pages["replay"][0], width)
        try:
            assert errors == []
            box = page.locator("svg#chart").bounding_box()
            assert box and box["width"] > 300 and box["height"] > 200, box
            assert box["width"] <= width  # the chart shrinks to the screen
            body = page.evaluate("document.documentElement.scrollWidth")
            assert body <= width + 1, f"the page scrolls sideways at {width}px: {body}"
            row = page.locator("#layer-table tr.first-nonfinite")
            assert row.count() == 1 and "bn1" in row.inner_text()
            color = row.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
            assert color not in ("rgba(0, 0, 0, 0)", "transparent")  # highlighted
        finally:
            page.close()


def test_the_page_prints(browser, pages, tmp_path):
    page, errors = open_page(browser, pages["replay"][0])
    try:
        pdf = page.pdf(path=str(tmp_path / "r.pdf"))
        assert pdf[:5] == b"%PDF-" and errors == []
    finally:
        page.close()
