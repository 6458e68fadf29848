"""Small helpers that turn measured values into the short phrases evidence lines use."""

from __future__ import annotations

from typing import Sequence


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


def first_sentence(message: str, limit: int = 200) -> str:
    """The first sentence of a (TensorFlow) error message, which goes on for a paragraph."""
    text = " ".join(message.split())
    for end in (". ", "! ", "? "):
        if end in text:
            text = text[: text.index(end) + 1]
            break
    return text if len(text) <= limit else text[: limit - 1] + "…"
