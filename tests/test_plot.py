"""The training curves drawn with matplotlib (`replay --plot`, the HTML report's chart): in
process from Report objects, no TensorFlow needed."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nandoc.core.finding import Finding, Location, Severity, VerifiedFix
from nandoc.core.records import FirstNonfinite
from nandoc.core.report import CheckResult, Outcome, Report

pytest.importorskip("matplotlib")

from nandoc.render import plot  # noqa: E402

HOSTILE = "<script>alert(1)</script>"
LAYERS = ["dense", "bn1", "out"]
SPE = 20  # steps per epoch


def replay_report(*, layers: bool = True, findings: bool = True) -> Report:
    """A replay that diverges: the loss grows over orders of magnitude and turns NaN at epoch
    3, step 11 (global step 51), with per-layer gradient norms and the failing batch."""
    steps = list(range(1, 52))
    loss = [0.5 * 1.25 ** s for s in steps[:-1]] + [None]
    grad = [0.1 * 1.3 ** s for s in steps[:-1]] + [None]
    series: dict = {"step": steps, "loss": loss, "grad_norm": grad}
    extra: dict = {"replay": {"epochs_requested": 5, "steps_limit": None, "steps_ran": 51,
                              "steps_per_epoch": SPE, "stopped_by": "nan", "series": series}}
    if layers:
        series["layer_grad_norm"] = {
            "layers": LAYERS,
            "values": [[0.01 * s, 0.1 * 1.3 ** s, 1e-3] for s in steps[:-1]]
            + [[0.5, None, 2e-3]]}
        extra["failing_batch"] = {
            "epoch": 3, "step": 11, "rows": [41, 42, 43],
            "layers": [{"layer": "dense", "finite_fraction": 1.0, "max_abs": 12.5,
                        "grad_norm": 0.5},
                       {"layer": "bn1", "finite_fraction": 0.25, "max_abs": math.inf,
                        "grad_norm": math.nan},
                       {"layer": "out", "finite_fraction": 0.0, "max_abs": math.nan,
                        "grad_norm": 2e-3}]}
    found = [Finding(
        cause="data-unscaled", severity=Severity.ERROR, confidence=0.9,
        title=f"unscaled feature '{HOSTILE}' overflows layer 'bn1'",
        evidence=f"column {HOSTILE} reaches 2.9e+36 <b>there</b> & more",
        location=Location(kind="data", column=HOSTILE, rows=(41, 42, 43), file="data.csv",
                          epoch=3, step=11),
        fix="Scale the features.", check="step-data-unscaled", confirmed=True,
        verified_fix=VerifiedFix("StandardScaler on the features", 40, True)),
        Finding(cause="exploding-gradients", severity=Severity.WARNING, confidence=0.6,
                title="gradient norms grow by 10 orders of magnitude",
                evidence="from 0.13 to 5.0e+4", location=Location(kind="optimizer"),
                fix="clipnorm=1.0", check="train-exploding-gradients",
                verified_fix=VerifiedFix("clipnorm=1.0", 40, False))] if findings else []
    return Report.build(
        "replay", "0.1.0", found,
        checks=(CheckResult("data-unscaled", Outcome.RAN, 1),
                CheckResult("metric-probe", Outcome.NOT_APPLICABLE,
                            message="no custom_objects files were given"),
                CheckResult("broken", Outcome.FAILED, message="ValueError: boom")),
        inputs={"model": "/proj/models/net.keras", "data": "/proj/data.csv",
                "train_samples": 800, "validation_samples": 200,
                "unused_columns": [{"column": HOSTILE, "why": f"'{HOSTILE}' is text"}]},
        timings={"train_s": 3.5, "total_s": 4.25},
        extra=extra,
        first_nonfinite=FirstNonfinite(where="forward", epoch=3, step=11, layer="bn1",
                                       op="FusedBatchNormV3", rows=(41, 42, 43),
                                       detail="the output of layer 'bn1' turns NaN"),
        not_checked=("the loss: the model was saved without one",))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_texts(svg: str) -> list[str]:
    """Every text run of the SVG (with svg.fonttype none, matplotlib writes text as text)."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]


def flat(text: str) -> str:
    """A tick label as read: matplotlib writes 10^-1 as the runs '1', '0', '−', '1'."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def png() -> bytes:
    return plot.render_png(replay_report())


@pytest.fixture(scope="module")
def svg() -> str:
    return plot.render_svg(replay_report())


def test_the_png_is_a_900_pixel_wide_image_and_grows_with_the_layer_panel(png):
    import io

    from PIL import Image

    without = plot.render_png(replay_report(layers=False))
    (w1, h1), (w2, h2) = png_size(png), png_size(without)
    assert w1 == w2 == 900
    assert 500 <= h2 < h1 <= 1200
    pixels = Image.open(io.BytesIO(png)).convert("RGB")
    colours = {c for _, c in pixels.getcolors(maxcolors=1 << 20)}
    for hex_ in (plot.BLUE, plot.ORANGE, plot.RED):  # the loss, the gradient norm, the NaN mark
        rgb = tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in colours, hex_


def test_the_svg_holds_the_title_labels_ticks_and_the_nan_mark(svg):
    texts = [flat(t) if t.startswith("1\n") else t for t in svg_texts(svg)]
    assert "nandoc replay: net.keras — error: data-unscaled" in texts
    for label in ("step", "loss (log scale)", "gradient norm (L2)",
                  "first non-finite: step 51 (epoch 3, step 11, forward)",
                  "loss per step", "gradient norm per step (log scale)",
                  "per-layer gradient norm on the failing step (step 51)"):
        assert label in texts, label
    assert {"10", "20", "30", "40", "50"} <= set(texts)  # the step axis's tick numbers
    assert {"100", "101", "102", "103", "104"} <= set(texts)  # 10^0 .. 10^4: the loss grew
    assert "10−1" in texts  # the gradient norm's and the layers' log axes go below 1
    for layer in LAYERS:
        assert layer in texts
    assert "NaN" in texts  # bn1's non-finite gradient norm is a labelled bar
    assert {"step 50 (before)", "step 51 (failing step)", "not finite"} <= set(texts)


def test_a_loss_that_stays_within_an_order_of_magnitude_is_linear():
    report = replay_report(layers=False)
    series = report.extra["replay"]["series"]
    series["loss"] = [1.0 + 0.01 * s for s in series["step"]]
    texts = svg_texts(plot.render_svg(report))
    assert "loss" in texts and "loss (log scale)" not in texts
    assert not any(t.startswith("per-layer") for t in texts)


def test_output_is_deterministic(png, svg):
    report = replay_report()
    assert plot.render_svg(report) == svg
    assert plot.render_png(report) == png
    assert [plot.format_for(Path(p)) for p in ("a.png", "b.SVG", "c.pdf", "d.jpg")] == [
        "png", "svg", "pdf", "png"]


def test_write_plot_picks_the_format_by_the_suffix(tmp_path):
    from nandoc.cli.output import write_plot

    report = replay_report()
    write_plot(report, tmp_path / "p.svg")
    write_plot(report, tmp_path / "p.pdf")
    assert (tmp_path / "p.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "gradient norm (L2)" in svg_texts((tmp_path / "p.svg").read_text(encoding="utf-8"))
    assert (tmp_path / "p.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_report_without_a_series_still_draws_a_labelled_image():
    report = Report.build("check", "0.1.0", [], inputs={"model": "m.keras"})
    texts = svg_texts(plot.render_svg(report))
    assert "nandoc check: m.keras — clean" in texts
    assert any("no per-step training series" in t for t in texts)
    assert png_size(plot.render_png(report))[0] == 900


def test_a_failure_at_the_first_step_draws_the_layers_and_says_why_there_is_no_curve():
    report = replay_report()
    report.extra["replay"]["series"] = {
        "step": [1], "loss": [None], "grad_norm": [None],
        "layer_grad_norm": {"layers": LAYERS, "values": [[None, None, 0.25]]}}
    report = Report.build("replay", "0.1.0", list(report.findings), extra=report.extra,
                          inputs=report.inputs,
                          first_nonfinite=FirstNonfinite(where="forward", epoch=1, step=1))
    texts = svg_texts(plot.render_svg(report))
    assert any(t.startswith("no finite loss or gradient norm before the first non-finite")
               for t in texts)
    assert "loss per step" not in texts and "step" not in texts
    assert texts.count("NaN") == 2 and set(LAYERS) <= set(texts)


def test_matplotlib_is_not_imported_with_nandoc():
    code = ("import sys, nandoc, nandoc.render, nandoc.render.plot, nandoc.render.html, "
            "nandoc.cli.output; assert 'matplotlib' not in sys.modules, 'matplotlib loaded'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
