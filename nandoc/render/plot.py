"""The training curves of a report, drawn with matplotlib: `--plot FILE` (PNG, SVG or PDF by the
file's suffix) and the charts inlined in the HTML report.

Loss and gradient norm per step up to the first non-finite value (marked by a red line), and,
when the run measured them, the per-layer gradient norms on the failing step. matplotlib is
imported here only, lazily, drawing on an Agg canvas: importing nandoc never loads it, and the
user's pyplot state and backend are left alone. Output is deterministic (no date, a fixed SVG
id salt) so the same report gives the same bytes.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from nandoc.core.report import Report

WIDTH_IN, DPI = 9.0, 100  # a 900-pixel-wide PNG
PANEL_IN = 2.6  # the height of the loss and the gradient-norm panels
BAR_IN = 0.28  # per layer in the per-layer panel
MAX_LAYERS = 40  # the per-layer panel shows at most this many (the first ones, in model order)
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
BLUE, ORANGE, RED, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f"
RC = {"svg.hashsalt": "nandoc", "svg.fonttype": "none", "font.size": 10,
      "axes.titlesize": 11, "figure.titlesize": 12, "pdf.fonttype": 42}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
            "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


@dataclass
class Curves:
    """What the plot reads from a report: the sampled series, the failing step, the layers."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)  # NaN where not finite / not measured
    grad_norm: list[float] = field(default_factory=list)
    nan_step: int | None = None  # the global step (from 1) of the first non-finite value
    nan_label: str = ""
    layers: list[str] = field(default_factory=list)  # the per-layer panel, when measured
    layer_values: list[float] = field(default_factory=list)
    layer_step: int | None = None  # the step of layer_values
    before_values: list[float] = field(default_factory=list)  # the sampled step before it
    before_step: int | None = None

    @property
    def has_series(self) -> bool:
        """Something to draw as curves: a step with a finite loss or gradient norm."""
        return any(math.isfinite(v) for v in (*self.loss, *self.grad_norm))

    @property
    def drawable(self) -> bool:
        return self.has_series or bool(self.layers)


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def curves(report: Report) -> Curves:
    """The plot's data from a replay report (or check's training burst when it has a series)."""
    summary = report.extra.get("replay") or report.extra.get("burst") or {}
    series = summary.get("series") or {}
    steps = [int(s) for s in series.get("step", [])]
    out = Curves(steps=steps,
                 loss=[_num(v) for v in series.get("loss", [])][:len(steps)],
                 grad_norm=[_num(v) for v in series.get("grad_norm", [])][:len(steps)])
    out.loss += [math.nan] * (len(steps) - len(out.loss))
    out.grad_norm += [math.nan] * (len(steps) - len(out.grad_norm))
    first = report.first_nonfinite
    spe = summary.get("steps_per_epoch") or 0
    if first is not None and first.step:
        if spe and first.epoch:
            out.nan_step = (first.epoch - 1) * spe + first.step
        elif (first.epoch or 1) == 1:
            out.nan_step = first.step
        where = f", {first.where}" if first.where else ""
        at = f"step {out.nan_step} " if out.nan_step is not None else ""
        out.nan_label = f"first non-finite: {at}(epoch {first.epoch}, step {first.step}{where})"
    _layers(out, series.get("layer_grad_norm"), report.extra.get("failing_batch"))
    return out


def _layers(out: Curves, per_layer: Any, failing: Any) -> None:
    """Per-layer gradient norms on the failing step (its row of the series, the last sampled
    row when the failing step was not sampled; else the failing batch's own table), and on
    the sampled step before it, for comparison."""
    if isinstance(per_layer, dict) and per_layer.get("layers") and per_layer.get("values"):
        values = per_layer["values"]
        row = len(values) - 1
        if out.nan_step in out.steps and out.steps.index(out.nan_step) < len(values):
            row = out.steps.index(out.nan_step)
        out.layers = [str(name) for name in per_layer["layers"]]
        out.layer_values = [_num(v) for v in values[row]]
        out.layer_step = out.steps[row] if row < len(out.steps) else out.nan_step
        if row > 0 and row - 1 < len(out.steps):
            out.before_values = [_num(v) for v in values[row - 1]]
            out.before_step = out.steps[row - 1]
    elif isinstance(failing, dict) and failing.get("layers"):
        rows = [r for r in failing["layers"] if isinstance(r, dict)]
        out.layers = [str(r.get("layer")) for r in rows]
        out.layer_values = [_num(r.get("grad_norm")) for r in rows]
        out.layer_step = out.nan_step
    n = len(out.layers[:MAX_LAYERS])
    out.layers = out.layers[:n]
    out.layer_values = (out.layer_values + [math.nan] * n)[:n]
    if out.before_values:
        out.before_values = (out.before_values + [math.nan] * n)[:n]


def title(report: Report) -> str:
    model = report.inputs.get("model")
    name = PurePath(str(model)).name if model else "no model"
    if report.findings:
        head = report.findings[0]
        verdict = f"{head.severity.value}: {head.cause}"
    else:
        verdict = report.status
    return f"nandoc {report.command}: {name} — {verdict}"


def _spans_orders(values: list[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


def _mark(ax, data: Curves, label: bool) -> None:
    if data.nan_step is None:
        return
    ax.axvline(data.nan_step, color=RED, linewidth=1.5, linestyle="--")
    if label:
        lo, hi = ax.get_xlim()
        right = (data.nan_step - lo) > (hi - lo) / 2  # the label on the side with room
        ax.annotate(data.nan_label, xy=(data.nan_step, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-4 if right else 4, -4), textcoords="offset points",
                    ha="right" if right else "left", va="top",
                    color=RED, fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": RED, "lw": 0.5})


def _line(ax, data: Curves, values: list[float], color: str, ylabel: str, log: bool) -> None:
    import numpy as np

    y = np.asarray(values, dtype=np.float64)
    if log:
        y = np.where(y > 0, y, np.nan)
        ax.set_yscale("log")
    if np.isfinite(y).any():
        ax.plot(data.steps, y, color=color, linewidth=1.4, marker="." if len(y) < 40 else None)
    else:
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color=GREY)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)


def figure(report: Report):
    """The matplotlib Figure (on an Agg canvas) for a report."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    data = curves(report)
    heights = [PANEL_IN, PANEL_IN] if data.has_series else [PANEL_IN * 0.6]
    if data.layers:
        heights.append(max(1.6, 0.8 + BAR_IN * len(data.layers)))
    fig = Figure(figsize=(WIDTH_IN, sum(heights) + 0.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title(report))
    axes = fig.subplots(len(heights), 1, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    if data.has_series:
        loss_ax, grad_ax = axes[0], axes[1]
        grad_ax.sharex(loss_ax)
        log = _spans_orders(data.loss)
        _line(loss_ax, data, data.loss, BLUE, "loss (log scale)" if log else "loss", log)
        loss_ax.set_title("loss per step")
        loss_ax.tick_params(labelbottom=True)
        loss_ax.set_xlabel("step")
        _line(grad_ax, data, data.grad_norm, ORANGE, "gradient norm (L2)", True)
        grad_ax.set_title("gradient norm per step (log scale)")
        grad_ax.set_xlabel("step")
        hi = max([*data.steps, data.nan_step or 0])
        loss_ax.set_xlim(min(data.steps), hi + max(1, hi // 50))
        loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        _mark(loss_ax, data, True)
        _mark(grad_ax, data, False)
    else:
        axes[0].axis("off")
        note = ("no per-step training series in this report (run `nandoc replay`)"
                if not data.steps else
                "no finite loss or gradient norm before the first non-finite value: "
                "no curve to draw")
        if data.nan_label:
            note += f"\n{data.nan_label}"
        axes[0].text(0.5, 0.5, note, ha="center", va="center", color=GREY)
    if data.layers:
        _bars(axes[-1], data)
    return fig


def _bars(ax, data: Curves) -> None:
    """Horizontal bars, one group per layer in model order, log scale: the failing step, and
    the sampled step before it when there is one; a non-finite norm is a red bar to the
    panel's edge labelled NaN (or inf)."""
    import numpy as np

    rows = [(data.layer_values, data.layer_step, ORANGE, "failing step")]
    if data.before_values:
        rows.insert(0, (data.before_values, data.before_step, BLUE, "before"))
    every = np.asarray([v for values, *_ in rows for v in values], dtype=np.float64)
    finite = every[np.isfinite(every) & (every > 0)]
    lo = float(finite.min()) / 3 if finite.size else 1e-3
    hi = float(finite.max()) * 30 if finite.size else 1.0
    height = 0.8 / len(rows)
    pos = np.arange(len(data.layers), dtype=np.float64)
    for k, (values, _, color, _) in enumerate(rows):
        y = pos - 0.4 + height * (k + 0.5)
        v = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(v) & (v > 0)
        ax.barh(y[ok], v[ok] - lo, left=lo, color=color, height=height * 0.9)
        for i, value in enumerate(v):
            if not math.isfinite(value):
                ax.barh(y[i], hi - lo, left=lo, color=RED, height=height * 0.9, alpha=0.85)
                ax.annotate("NaN" if math.isnan(value) else str(value), xy=(hi, y[i]),
                            xytext=(-4, 0), textcoords="offset points", va="center",
                            ha="right", color="white", fontsize=8, fontweight="bold")
            elif value <= 0:
                ax.text(lo, y[i], " 0", va="center", color=GREY, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    if not finite.size:  # nothing finite to measure the bars against
        ax.set_xticks([], [])
        ax.set_xticks([], [], minor=True)
    ax.set_ylim(len(data.layers) - 0.5, -0.5)  # model order, top to bottom
    ax.set_yticks(pos, data.layers)
    ax.set_xlabel("gradient norm (L2)")
    where = f" (step {data.layer_step})" if data.layer_step else ""
    ax.set_title(f"per-layer gradient norm on the failing step{where}")
    ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
    from matplotlib.patches import Patch

    handles = [Patch(color=color, label=f"step {step} ({what})" if step is not None else what)
               for values, step, color, what in rows
               if any(math.isfinite(v) for v in values)]
    if not np.isfinite(every).all():
        handles.append(Patch(color=RED, alpha=0.85, label="not finite"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)


def render_bytes(report: Report, fmt: str = "png") -> bytes:
    """The figure as `png`, `svg` or `pdf` bytes."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = figure(report)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=METADATA[fmt])
    return buf.getvalue()


def format_for(path: PurePath) -> str:
    """The image format a --plot path asks for by its suffix; PNG when the suffix is another."""
    return FORMATS.get(path.suffix.lower(), "png")


def render_png(report: Report) -> bytes:
    return render_bytes(report, "png")


def render_svg(report: Report) -> str:
    return render_bytes(report, "svg").decode("utf-8")
