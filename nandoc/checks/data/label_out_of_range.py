"""label-out-of-range: targets outside the domain of the compiled loss."""

from __future__ import annotations

from typing import Any

import numpy as np

from nandoc.core.evidence import num, rows_phrase
from nandoc.core.finding import Finding, Location, Severity
from nandoc.core.registry import check
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.loading.shards import shard_location
from nandoc.loading.targets import NO_HITS, Hits

BINARY = {"binary_crossentropy", "binary_focal_crossentropy"}
SPARSE = {"sparse_categorical_crossentropy"}
ONE_HOT = {"categorical_crossentropy", "categorical_focal_crossentropy"}
NON_NEGATIVE = {
    "mean_squared_logarithmic_error": "Keras 3 clamps targets below 1e-7 up to 1e-7 before "
    "log(1 + y), so the model silently learns other targets than yours",
    "kl_divergence": "Keras 3 clips targets into [1e-7, 1], so negative targets are silently "
    "replaced",
    "poisson": "a Poisson likelihood has no negative counts; the loss then rewards predictions "
    "near 0, and log(y_pred + 1e-7) is NaN as soon as a linear output goes below -1e-7",
}


def canonical(info: LossInfo) -> str:
    """The built-in loss function's own name, whatever name the user gave the Loss object."""
    fn = getattr(info.fn, "fn", info.fn)
    return getattr(fn, "__name__", info.name)


def _width(tensor: Any) -> int | None:
    shape = tuple(tensor.shape)
    return int(shape[-1]) if shape and shape[-1] is not None else None


def _per_output(data: Dataset, loss: list[LossInfo], model: Any
                ) -> list[tuple[LossInfo, tuple[str, ...], int | None]]:
    """(loss, its target columns, its output's width) per output the data feeds."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(loss) == 1 and len(outputs) <= 1:
        return [(loss[0], data.targets, _width(outputs[0]) if outputs else None)]
    names = list(getattr(model, "output_names", None) or [])
    targets = dict(data.outputs)
    out = []
    for info in loss:
        if info.output in targets and info.output in names:
            out.append((info, targets[info.output], _width(outputs[names.index(info.output)])))
    return out


def _finding(info: LossInfo, column: str, title: str, evidence: str, fix: str, rows: list[int],
             measured: dict, data: Dataset, hits: Hits = NO_HITS) -> Finding:
    split = data.val if hits.split == "validation" and data.val is not None else data.train
    file, local, where = shard_location(data.shard_map(split), rows[:10], split.file)
    if hits.elsewhere:  # rows are shown from one file; the count says the other has some
        other = data.train if split is data.val else data.val
        name = other.file if other is not None and other.file else "the other split"
        where += f" ({hits.elsewhere} more in {name})"
    folders = _class_folders(data, hits)
    if folders:  # image folders: a label id is a class subfolder, which is what to act on
        s = "s" if len(folders) > 1 else ""
        shown = ", ".join(f"'{f}'" for f in folders)
        where += (f" These ids are the class folder{s} {shown}: Keras numbers the class "
                  f"folders in sorted order, {len(data.classes or ())} here.")
        fix = (f"Remove the class folder{s} {shown} (or merge {'them' if s else 'it'} into "
               f"another class), or give the model one output per class folder "
               f"(Dense({len(data.classes or ())}, activation='softmax') with "
               f"sparse_categorical_crossentropy).")
    return Finding(
        cause="label-out-of-range", severity=Severity.ERROR, confidence=0.95, title=title,
        evidence=evidence + where, fix=fix, measured=measured,
        location=Location(kind="data", column=column, rows=local or None,
                          name=info.name, file=file),
    )


def _class_folders(data: Dataset, hits: Hits) -> list[str]:
    """The class folders behind offending label ids (image folders), in id order."""
    classes = data.classes or ()
    return [classes[int(v)] for v in hits.values
            if float(v).is_integer() and 0 <= v < len(classes)]


def _bad(data: Dataset, column: str, **test) -> tuple[np.ndarray, list[int], int, str, Hits]:
    """(offending values, first rows, count, count as words, the hits) over every label of
    `column` (the rows: of the first file with hits)."""
    hits = data.label_hits(column, **test)
    shown = f"{hits.count}" if hits.exact else f"at least {hits.count}"
    return np.array(hits.values), list(hits.rows), hits.count, shown, hits


@check(id="label-out-of-range", needs=("data", "loss", "model"), causes=("label-out-of-range",))
def label_out_of_range(data: Dataset, loss: list[LossInfo], model: Any):
    """Targets outside the compiled loss's domain (binary, class ids, one-hot width, negatives)."""
    for info, targets, width in _per_output(data, loss, model):
        yield from _judge(info, targets, width, data)


def _values_per_sample(data: Dataset, targets: tuple[str, ...]) -> int:
    """Target values per sample: one per column of a table, an array's width otherwise."""
    if data.kind == "table":
        return len(targets)
    y = data.train.y
    arrays = y.arrays if hasattr(y, "arrays") else {data.targets[0]: y}
    total = 0
    for t in targets:
        a = arrays.get(t, arrays.get(data.output_of(t) or "", None))
        total += int(np.prod(np.shape(a)[1:])) if a is not None else 1
    return total


def _judge(info: LossInfo, targets: tuple[str, ...], width: int | None, data: Dataset):
    kind = canonical(info)
    target = targets[0]
    if kind in BINARY:
        for col in targets:
            values, rows, n, many, hits = _bad(data, col, below=0, above=1)
            if n:
                yield _finding(
                    info, col, f"{many} label{'s' if n != 1 else ''} outside [0, 1] for {kind} "
                               f"in '{col}'",
                    f"values {', '.join(num(v) for v in values[:5])} at {rows_phrase(rows, n)}; "
                    f"{kind} is -(y log p + (1-y) log(1-p)): for y outside [0, 1] it has no "
                    f"minimum, so the logits run off to infinity.",
                    "Map the labels to 0/1 (e.g. y = (y > 0).astype('float32')), or use a loss "
                    "for the values you have.", rows,
                    {"bad_values": values[:20].tolist(), "count": n}, data, hits)
    elif kind in SPARSE and width is not None:
        values, rows, n, many, hits = _bad(data, target, below=0, at_or_above=width, integer=True)
        if n:
            yield _finding(
                info, target,
                f"{many} class id{'s' if n != 1 else ''} outside 0..{width - 1} for a "
                f"{width}-unit output",
                f"values {', '.join(num(v) for v in values[:5])} at {rows_phrase(rows, n)}; "
                f"sparse_categorical_crossentropy needs integer ids below the output width "
                f"({width}). On CPU it raises InvalidArgumentError, on GPU it silently gives NaN.",
                ("A 1-unit output holds one class: use Dense(1, activation='sigmoid') with "
                 "binary_crossentropy for two classes, or Dense(n_classes, 'softmax')."
                 if width == 1 else
                 f"Re-index the classes to 0..{width - 1} (pd.factorize), or widen the output "
                 f"layer to the number of classes."), rows,
                {"bad_values": values[:20].tolist(), "count": n, "output_width": width}, data,
                hits)
    elif kind in ONE_HOT and width is not None:
        if _values_per_sample(data, targets) != width:
            yield _finding(
                info, target,
                f"{len(targets)} target column(s) for a {width}-unit output with {kind}",
                f"{kind} expects one-hot rows as wide as the output ({width}); the data gives "
                f"{len(targets)} target column(s)"
                + (" — class ids, by the look of it" if len(targets) == 1 else "") + ".",
                "Use sparse_categorical_crossentropy for integer class ids, or one-hot encode "
                f"the target into {width} columns.", [],
                {"target_columns": len(targets), "output_width": width}, data)
    elif kind in NON_NEGATIVE:
        for col in targets:
            values, rows, n, many, hits = _bad(data, col, below=0)
            if n:
                low = min(s.min for s in data.label_stats() if s.name == col and s.min is not None)
                yield _finding(
                    info, col, f"{many} negative target{'s' if n != 1 else ''} into {kind} in "
                               f"'{col}'",
                    f"values down to {num(low)} at {rows_phrase(rows, n)}; "
                    f"{NON_NEGATIVE[kind]}.",
                    "Shift or transform the targets to be non-negative, or use a loss defined "
                    "for negative values (mean_squared_error, huber).", rows,
                    {"min": float(low), "count": n}, data, hits)
