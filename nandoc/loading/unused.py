"""Every column of a data file is used, or listed with why it was not: nothing is dropped
silently. The list goes into the run's report and into the message when the model's feature
count does not match the data's."""

from __future__ import annotations

from nandoc.config import Config
from nandoc.loading.stats import ColumnScan
from nandoc.loading.tablefile import Table, shown_name, unnamed

NESTED = ("list", "array", "struct", "object")


def all_missing(c: ColumnScan) -> bool:
    """Empty (or NA) in every row: fed as a feature it is NaN throughout, a data-nonfinite
    finding; never silently left out."""
    return c.n_rows > 0 and c.n_missing == c.n_rows


def empty_feature(c: ColumnScan) -> bool:
    """A named column empty in every row: a default feature (NaN, so a data-nonfinite error).
    An unnamed empty one is what a trailing delimiter on every line leaves: not a feature."""
    return all_missing(c) and not unnamed(c.name)


def _type_of(table: Table, name: str) -> str | None:
    return next((t for c, t in table.column_types if c == name), None)


def why_unused(table: Table, c: ColumnScan, cfg: Config) -> str:
    """Why column `c`, not a feature, was left out of the features (one clause)."""
    name = shown_name(c.name)
    dtype = _type_of(table, c.name)
    if cfg.features:
        where = "[data] inputs" if cfg.inputs else "[data] features"
        return f"column {name} is not listed in {where}"
    if dtype is not None and dtype.lower().startswith(NESTED):
        return (f"column {name} holds nested values ({dtype}), which nandoc cannot feed as one "
                f"feature; flatten it into numeric columns or list the features in "
                f"[data] features")
    if all_missing(c) and unnamed(c.name):
        return ("an unnamed column is empty in every row (a delimiter at the end of each "
                "line leaves one)")
    if c.n_text:
        examples = ", ".join(repr(t) for t in c.text_examples[:2])
        more = ", ..." if c.n_text > len(c.text_examples[:2]) else ""
        return (f"column {name} holds text ({examples}{more}), nandoc cannot feed it; encode "
                f"it as numbers or list the features in [data] features")
    if dtype is not None:
        return (f"column {name} holds {dtype} values, not numbers; convert it or list the "
                f"features in [data] features")
    return f"column {name} holds no numbers"


def unused_columns(table: Table, columns: dict[str, ColumnScan], cfg: Config,
                   features: tuple[str, ...], targets: tuple[str, ...]
                   ) -> tuple[tuple[str, str], ...]:
    """(column, why) for each column of the file that is neither a feature nor a target."""
    return tuple((name, why_unused(table, c, cfg)) for name, c in columns.items()
                 if name not in features and name not in targets)


def dropped_phrase(unused: tuple[tuple[str, str], ...]) -> str:
    """The columns left out, as a sentence for a message ('' when none but the targets)."""
    left = [why for _, why in unused]
    if not left:
        return ""
    shown = "; ".join(left[:8]) + (f"; and {len(left) - 8} more" if len(left) > 8 else "")
    return f" Left out of the features: {shown}."
