"""Numbers written for people: decimal commas ("1,5" from a European Excel export) and thousands
separators ("1,234.5", "1.234,5", "1 234").

A column whose first rows are not plain numbers is matched against these spellings. When every
cell fits one reading, the column is read that way (and the run says so); a cell further down
that does not fit the same spelling is an unparsable cell, never a guess. When the cells fit two
readings that give different numbers ("1,234" alone: 1.234 with a decimal comma, 1234 with a
thousands comma), the column is refused by name with the way to say which it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

_DC = r"[-+]?\d+(?:,\d+)?"  # decimal comma (a whole number too)
_EU = r"[-+]?\d{1,3}(?:\.\d{3})+(?:,\d+)?"  # thousands dots, decimal comma
_US = r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # thousands commas, decimal point
_PLAIN = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SPACES = " \u00a0\u202f'"
_SP = r"[-+]?\d{1,3}(?:[ \u00a0\u202f']\d{3})+(?:[.,]\d+)?"  # thousands spaces (or ')


@dataclass(frozen=True)
class NumberFormat:
    decimal: str  # "," or "."
    thousands: str  # the characters removed: "", ".", ",", or spaces
    accept: str  # regex of the cells read this way (anchored)

    def describe(self) -> str:
        sep = {"": "", ".": " and '.' between thousands", ",": " and ',' between thousands"}
        th = sep.get(self.thousands, " and spaces between thousands")
        return f"'{self.decimal}' as the decimal mark{th}"

    def normalise(self, text: pl.Series) -> pl.Series:
        """The cells as plain numbers' text where they fit this spelling; null where they do
        not (they stay unparsable: "1.234" in a decimal-comma column is not read as 1.234)."""
        fits = text.str.contains(self.accept)
        out = text
        if self.thousands:
            out = out.str.replace_all(f"[{re.escape(self.thousands)}]", "")
        if self.decimal == ",":
            out = out.str.replace(",", ".", literal=True)
        return pl.select(pl.when(fits.fill_null(False)).then(out)).to_series()


@dataclass(frozen=True)
class Ambiguous:
    example: str


def _all(pattern: str, cells: list[str]) -> bool:
    rx = re.compile(f"^(?:{pattern})$")
    return all(rx.match(c) for c in cells)


def _any(pattern: str, cells: list[str]) -> bool:
    rx = re.compile(f"^(?:{pattern})$")
    return any(rx.match(c) for c in cells)


def _anchored(*patterns: str) -> str:
    return "^(?:" + "|".join(patterns) + ")$"


def classify(cells: list[str]) -> NumberFormat | Ambiguous | None:
    """How the (stripped, non-missing) cells of a column spell their numbers, if they all
    spell numbers one way; None when they are not numbers (text) or need no help."""
    if not cells:
        return None
    if any(c[:1] in _SPACES for c in cells):
        return None
    if _all(f"{_SP}|{_DC}|{_PLAIN}", cells) and _any(_SP, cells):
        comma = any("," in c for c in cells)
        point = any("." in c for c in cells)
        if comma and point:
            return None
        dec = "," if comma else "."
        return NumberFormat(dec, _SPACES, _anchored(_SP, _DC if comma else _PLAIN))
    eu = _all(f"{_DC}|{_EU}", cells) and (_any(_EU, cells) or any("," in c for c in cells))
    us = _all(f"{_US}|{_PLAIN}", cells) and _any(_US, cells)
    if eu and us:
        return Ambiguous(next(c for c in cells if "," in c))
    if eu:
        dots = _any(_EU, cells)
        return NumberFormat(",", "." if dots else "", _anchored(_DC, _EU) if dots
                            else _anchored(_DC))
    if us:
        return NumberFormat(".", ",", _anchored(_US, _PLAIN))
    return None
