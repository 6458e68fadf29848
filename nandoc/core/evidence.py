"""Small helpers that turn measured values into the short phrases evidence lines use."""

from __future__ import annotations

from collections.abc import Sequence


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def rows_phrase(rows: Sequence[int], total: int | None = None) -> str:
    """'rows 5, 17, 23 and 9 more' — rows count from 1, header excluded."""
    shown = list(rows)[:5]
    if not shown:
        return "no rows"
    text = ("row " if len(shown) == 1 and (total or 1) == 1 else "rows ") + \
        ", ".join(str(r) for r in shown)
    more = (total if total is not None else len(rows)) - len(shown)
    return text + (f" and {more} more" if more > 0 else "")


def num(x: float) -> str:
    """A compact number: 0.5, 1200, 1.7e+18."""
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.2g}"
    return f"{x:.4g}"


def _tf_cause(message: str) -> str:
    """The line of a TensorFlow graph error that says what went wrong ("indices[3,4] = 70 is not
    in [0, 50)"), not the node and the Python stack it was defined at."""
    if "Graph execution error" not in message and "Detected at node" not in message:
        return message
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    said = [ln for ln in lines if not ln.startswith(("File ", "Graph execution", "Detected at",
                                                     "[[", "{{"))
            and not ln.endswith(("(most recent call last):",)) and "[Op:" not in ln
            and not ln.startswith(("self.", "return ", "outputs", "x = ", "y_pred"))]
    said = [ln.split("\t")[0].split(" [[")[0] for ln in said]
    return said[-1] if said else lines[0]


def first_sentence(message: str, limit: int = 200) -> str:
    """The first sentence of a (TensorFlow) error message, which goes on for a paragraph."""
    text = " ".join(_tf_cause(message).split())
    for end in (". ", "! ", "? "):
        if end in text:
            text = text[: text.index(end) + 1]
            break
    return text if len(text) <= limit else text[: limit - 1] + "…"


BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40, log: bool = True) -> str:
    """A one-line trace of a series; ✖ marks a non-finite point (or a non-positive one on a
    log scale). The last point (the one before the NaN) always stays in view."""
    import numpy as np

    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return ""
    if v.size > width:
        idx = np.linspace(0, v.size - 1, width).round().astype(int)
        v = v[idx]
    finite = np.isfinite(v) & ((v > 0) if log else True)
    if not finite.any():
        return "✖" * len(v)
    t = np.where(finite, np.log10(np.where(finite, v, 1.0)) if log else v, np.nan)
    lo, hi = np.nanmin(t), np.nanmax(t)
    span = (hi - lo) or 1.0
    return "".join("✖" if not ok else BLOCKS[int((x - lo) / span * (len(BLOCKS) - 1))]
                   for x, ok in zip(t, finite))
