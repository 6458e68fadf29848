"""A PNG of loss and gradient norm per step up to the first non-finite value (`--plot FILE`).

Drawn with numpy into an RGB array and written with zlib: no plotting dependency. Two panels,
log-scaled when the values span orders of magnitude; a red line marks the first non-finite step.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from nandoc.core.report import Report

W, H = 900, 520
MARGIN = 40
BG, AXIS, GRID = (255, 255, 255), (60, 60, 60), (225, 225, 225)
COLORS = {"loss": (31, 119, 180), "grad_norm": (255, 127, 14)}
NAN = (214, 39, 40)

# 3x5 bitmap digits and a few letters, enough for axis labels and panel titles.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", "e": "000111101110011", "-": "000000111000000",
    "+": "000010111010000", ".": "000000000000010", " ": "000000000000000",
    "l": "110010010010111", "o": "000111101101111", "s": "000011110001110",
    "g": "000111101111001", "r": "000101110100100", "a": "000011101101011",
    "d": "001001111101111", "n": "000110101101101", "m": "000111111101101",
    "t": "010111010010011", "p": "000111101111100", "N": "101111111111101",
    "A": "010101111101101", "x": "000101010101000",
}


def _text(img: np.ndarray, x: int, y: int, text: str, color=AXIS, scale: int = 2) -> None:
    for ch in text:
        bits = _GLYPHS.get(ch, _GLYPHS[" "])
        for i, b in enumerate(bits):
            if b == "1":
                r, c = divmod(i, 3)
                y0, x0 = y + r * scale, x + c * scale
                img[y0:y0 + scale, x0:x0 + scale] = color
        x += 4 * scale


def _line(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.linspace(x0, x1, n).round().astype(int)
    ys = np.linspace(y0, y1, n).round().astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    img[ys[ok], xs[ok]] = color
    img[np.clip(ys[ok] + 1, 0, img.shape[0] - 1), xs[ok]] = color  # 2 px thick


def _panel(img, top: int, height: int, steps: Sequence[int], values: Sequence[float | None],
           name: str, nan_step: int | None, last_step: int) -> None:
    left, right = MARGIN + 40, W - MARGIN
    bottom = top + height
    img[top:bottom, left] = AXIS
    img[bottom, left:right] = AXIS
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    finite = np.isfinite(v)
    log = bool(finite.any() and (v[finite] > 0).all()
               and v[finite].max() / max(v[finite].min(), 1e-300) > 100)
    t = np.where(finite, np.log10(np.where(finite & (v > 0), v, 1.0)) if log else v, np.nan)
    title = f"{name} log" if log else name
    _text(img, left + 6, top + 4, title.replace("_", " "), COLORS[name])
    if not finite.any():
        return
    lo, hi = np.nanmin(t), np.nanmax(t)
    span = (hi - lo) or 1.0
    for frac in (0.25, 0.5, 0.75):
        img[int(bottom - frac * height), left + 1:right] = GRID
    _text(img, 4, top, f"{10 ** hi:.0e}" if log else f"{hi:.3g}")
    _text(img, 4, bottom - 10, f"{10 ** lo:.0e}" if log else f"{lo:.3g}")
    xmax = max(last_step, 1)

    def px(step, val):
        return left + (step - 1) / max(xmax - 1, 1) * (right - left - 2), \
            bottom - 2 - (val - lo) / span * (height - 20)

    prev = None
    for step, val in zip(s, t):
        if not np.isfinite(val):
            prev = None
            continue
        point = px(step, val)
        if prev is not None:
            _line(img, *prev, *point, COLORS[name])
        prev = point
    if nan_step is not None:
        x = int(px(nan_step, lo)[0])
        img[top:bottom, max(x - 1, 0):x + 1] = NAN
        _text(img, min(x + 4, right - 40), top + 4, "NaN", NAN)


def _png(img: np.ndarray) -> bytes:
    raw = b"".join(b"\x00" + row.tobytes() for row in img.astype(np.uint8))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def render_png(report: Report) -> bytes:
    """Loss and gradient norm per step from a replay report's series."""
    summary = report.extra.get("replay", {})
    series = summary.get("series", {})
    steps = series.get("step", [])
    first = report.first_nonfinite
    spe = summary.get("steps_per_epoch") or 0
    nan_step = None
    if first is not None and first.epoch and spe:
        nan_step = (first.epoch - 1) * spe + max(first.step or 0, 1)
    last = max([*steps, nan_step or 0, 1])
    img = np.full((H, W, 3), BG, dtype=np.uint8)
    half = (H - 3 * MARGIN) // 2
    _panel(img, MARGIN, half, steps, series.get("loss", []), "loss", nan_step, last)
    _panel(img, 2 * MARGIN + half, half, steps, series.get("grad_norm", []), "grad_norm",
           nan_step, last)
    _text(img, W // 2 - 20, H - 22, "step")
    return _png(img)
