"""Turn a scanned table into model-ready arrays: features, targets, validation split, windows.

The validation split is the LAST fraction of rows in file order, as Keras' validation_split
takes it; windows are cut inside each segment, so a validation segment shorter than one window
yields none. Every sample remembers the file row of its label, so findings can name rows.

A small file is materialised whole. A large one (see `sample.py`) gives splits that hold only
the sampled rows, windows cut where the sampled rows are contiguous; `Split.n_total` still
counts every sample of the segment, and the label statistics come from the scan of every row.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading import sample as sampling
from nandoc.loading.model_input import ModelInput, window_length
from nandoc.loading.shards import ShardMap
from nandoc.loading.structured import named_split, split_at
from nandoc.loading.table import DataScan, ScanPlan, Table, scan_table
from nandoc.loading.tablefile import shown_name
from nandoc.loading.targets import Hits, TargetStats, target_stats
from nandoc.loading.unused import dropped_phrase, empty_feature, unused_columns

MAX_SAMPLE_GROUP = 1024
MAX_RUN_HINT = 4096  # a longer window is captured by a second pass once the model confirms it


@dataclass(frozen=True)
class Split:
    name: str  # "train" or "validation"
    x: Any  # (n, F) or (n, T, F) float32 (NaN where the file had a bad cell), an array of the
    # model input's own shape (images, ids), or a Named for several inputs
    y: Any  # (n, k) float32, or a Named for several outputs
    rows: np.ndarray  # file row (from 1) of each sample's label row
    path: Path
    n_source_rows: int  # rows of the file segment the samples were cut from
    n_total: int | None = None  # samples in the whole segment; None: all of them are here
    in_memory: bool = False  # arrays handed in: `path` is only a name to show, no file

    @property
    def file(self) -> str | None:
        """The file name findings locate rows in; None for in-memory arrays."""
        return None if self.in_memory else self.path.name

    @property
    def n(self) -> int:
        """Samples held here (a sample of the segment for a large file)."""
        return int(self.x.shape[0])

    @property
    def total(self) -> int:
        """Samples in the whole segment."""
        return self.n if self.n_total is None else int(self.n_total)


@dataclass(frozen=True)
class Dataset:
    features: tuple[str, ...]
    targets: tuple[str, ...]
    train: Split
    val: Split | None
    window: int | None  # rows per window, None for row-wise data
    stride: int
    ignored_columns: tuple[str, ...]  # non-numeric columns left out of the default features
    sampled: bool = False  # the splits hold a bounded sample of a large file
    labels: tuple[TargetStats, ...] | None = None  # over every row; None: from the splits
    # model input (output) name -> the features (targets) feeding it; () for a single one
    inputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    row_names: tuple[str, ...] | None = None  # per sample row (from 1): its file (images)
    val_row_names: tuple[str, ...] | None = None  # the same for a separate validation folder
    classes: tuple[str, ...] | None = None  # image folders: the class folder of each label id
    kind: str = "table"  # table | arrays | images | source
    # every column of the data file that is not a feature, with why: (column, why)
    unused_columns: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # how the data file was read, when not plainly (encoding...)
    shards: ShardMap | None = None  # [data] path is a shard set: rows number across shards
    val_shards: ShardMap | None = None  # the same for validation_path

    def shard_map(self, split: Split | None) -> ShardMap | None:
        """The shards `split`'s rows number across, or None for one file."""
        if split is not None and self.val is split and self.val.path != self.train.path:
            return self.val_shards
        return self.shards

    @property
    def tabular(self) -> bool:
        """x is one array whose last axis holds the features, one per column (rows, windows)."""
        x = self.train.x
        return (isinstance(x, np.ndarray) and x.ndim in (2, 3)
                and x.shape[-1] == len(self.features))

    def output_of(self, target: str) -> str | None:
        return next((name for name, cols in self.outputs if target in cols), None)

    def row_names_of(self, split: Split | None) -> tuple[str, ...] | None:
        """The file behind each sample row (from 1) of `split`'s file (image folders)."""
        if split is not None and split is self.val and self.separate_validation:
            return self.val_row_names
        return self.row_names

    @property
    def separate_validation(self) -> bool:
        """The validation split comes from its own file, whose rows number from 1 again."""
        return self.val is not None and self.val.path != self.train.path

    def label_stats(self) -> tuple[TargetStats, ...]:
        """Per target column (a column may appear once per file: `TargetStats.split` says
        whose rows it numbers), over every label."""
        if self.labels is not None:
            return self.labels
        return tuple(s for j, name in enumerate(self.targets)
                     for s in _split_labels(name, j, self.train, self.val,
                                            self.separate_validation))

    def label_hits(self, column: str, **test: Any) -> Hits:
        """Labels of `column` failing `test` (see TargetStats.hits), over every file: the rows
        are those of the first file with hits (`Hits.split`), the count and values of all."""
        found = [(s.hits(**test), s.split) for s in self.label_stats() if s.name == column]
        found = [(h, split) for h, split in found if h.count]
        if not found:
            return Hits(0, (), ())
        split = found[0][1]
        rows = sorted({r for h, s in found if s == split for r in h.rows})[:10]
        return Hits(sum(h.count for h, _ in found), tuple(rows),
                    tuple(sorted({v for h, _ in found for v in h.values})[:20]),
                    all(h.exact for h, _ in found), split,
                    sum(h.count for h, s in found if s != split))


def default_targets(columns: tuple[str, ...] | list[str], source: Path) -> tuple[str, ...]:
    """Targets nandoc assumes without a setting: y, y0, y1... of an .npz archive."""
    if source.suffix.lower() != ".npz":
        return ()
    return tuple(n for n in columns if n == "y" or (n.startswith("y") and n[1:].isdigit()))


def scan_plan(cfg: Config, table: Table, window_hint: int | None = None) -> ScanPlan:
    """What the scan of `table` should gather for `cfg` (label columns, sample windows)."""
    run = (cfg.window.length if cfg.window and cfg.window.length else None) or window_hint or 1
    targets = cfg.target or default_targets(table.columns, table.path)
    return ScanPlan(targets=tuple(targets), features=cfg.features or None,
                    run=min(int(run), MAX_RUN_HINT), stride=cfg.window.stride if cfg.window else 1,
                    per_group=min(cfg.train.batch_size, MAX_SAMPLE_GROUP), seed=cfg.train.seed,
                    keep_all_rows=sampling.KEEP_ALL_ROWS, keep_all_bytes=sampling.KEEP_ALL_BYTES)


def select_columns(scan: DataScan, cfg: Config, source: Path) -> tuple[tuple[str, ...],
                                                                         tuple[str, ...],
                                                                         tuple[str, ...]]:
    """(features, targets, ignored non-numeric columns) after validating the names."""
    names = list(scan.columns)
    targets = cfg.target or default_targets(names, source)
    if not targets:
        raise DataError(
            f"nandoc needs to know the target column of {source.name}: set [data] target "
            f"in nandoc.toml or pass --target. The file's columns are: {_list(names)}."
            f"{_one_column_hint(names, source)}"
        )
    for t in targets:
        if t not in scan.columns:
            raise DataError(f"The target column '{t}' is not in {source.name}. Its columns "
                            f"are: {_list(names)}.{_near(t, names)}"
                            f"{_one_column_hint(names, source)}")
    for t in targets:
        _require_numbers(scan, t, "target", source)
    ignored: list[str] = []
    if cfg.features:
        features = cfg.features
        for f in features:
            if f not in scan.columns:
                raise DataError(f"The feature column '{f}' is not in {source.name}. Its "
                                f"columns are: {_list(names)}.{_near(f, names)}")
        overlap = set(features) & set(targets)
        if overlap:
            raise DataError(f"Column(s) {_list(sorted(overlap))} are both target and feature; "
                            f"remove them from [data] features.")
        for f in features:
            _require_numbers(scan, f, "feature", source)
    else:
        rest = [n for n in names if n not in targets]
        # an empty column stays a feature: NaN throughout, a data-nonfinite finding
        features = tuple(n for n in rest if scan.columns[n].numeric
                         or empty_feature(scan.columns[n]))
        ignored = [n for n in rest if n not in features]
        if not features:
            raise DataError(f"{source.name} has no numeric feature column besides the target "
                            f"({_list(targets)}); name the features in [data] features."
                            f"{_one_column_hint(names, source)}")
    return tuple(features), tuple(targets), tuple(ignored)


def _require_numbers(scan: DataScan, name: str, role: str, source: Path) -> None:
    """A column that is text throughout cannot be fed to a model: exit 2, not a finding."""
    c = scan.columns[name]
    if c.numeric or c.n_rows == 0 or c.n_missing == c.n_rows:
        return
    examples = ", ".join(repr(t) for t in c.text_examples) or "text"
    classes = sorted(t.strip() for t in c.text_examples)[:2] or ["no", "yes"]
    mapping = ", ".join(f"{t!r}: {i}" for i, t in enumerate(classes))
    how = (f"map it to numbers before training, e.g. df['{name}'] = "
           f"df['{name}'].map({{{mapping}}}), or pd.factorize(df['{name}'])[0] for more classes"
           if role == "target" else
           "encode it as numbers (one-hot or category codes) or leave it out of "
           "[data] features")
    raise DataError(f"The {role} column {shown_name(name)} of {source.name} holds text "
                    f"({examples}: "
                    f"{c.n_text} of {c.n_rows} cells), not numbers, and every Keras loss "
                    f"needs numbers; {how}.")


def _list(names) -> str:
    names = list(names)
    shown = ", ".join(shown_name(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _near(name: str, names: list[str]) -> str:
    """A suggestion the user can type: never a name with control characters."""
    typeable = [n for n in names if n.isprintable() and n == n.strip()]
    close = difflib.get_close_matches(name, typeable, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _one_column_hint(names: list[str], source: Path) -> str:
    if len(names) != 1:
        return ""
    marks = [m for m in (",", ";", "\t", "|", " ", ":") if m in names[0]]
    if not marks:
        return ""
    shown = {"\t": "tab", " ": "space"}.get(marks[0], repr(marks[0]))
    return (f" The file was read as one column whose name contains {shown}: is it separated by "
            f"a delimiter nandoc does not read? nandoc reads comma, semicolon, tab or pipe "
            f"separated files.")


def check_fit(table: Table, scan: DataScan, cfg: Config, model_input: ModelInput | None
              ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int | None]:
    """Everything build_dataset refuses, decided from the scan alone (no rows materialised):
    (features, targets, ignored columns, window)."""
    if scan.n_rows == 0:
        raise DataError(f"The data file {table.path} has a header but no data rows. Add the "
                        f"rows, or point [data] path at the file that has them.")
    features, targets, ignored = select_columns(scan, cfg, table.path)
    if (model_input is not None and model_input.features is not None
            and model_input.features != len(features)):
        where = f" (config: {cfg.source})" if cfg.source else ""
        unused = unused_columns(table, scan.columns, cfg, features, targets)
        raise DataError(
            f"The model expects {model_input.features} features per row but the data gives "
            f"{len(features)}{where}: {_list(features)}.{dropped_phrase(unused)} Set [data] "
            f"features to the {model_input.features} columns the model was trained on, or "
            f"check the target column.")
    window = window_length(cfg, model_input, len(features))
    if window is not None:
        n = scan.n_rows
        train_rows = split_at(n, cfg) if cfg.validation_path is None else n
        if train_rows < window:
            raise DataError(
                f"The training segment of {table.path.name} has {train_rows} rows, fewer than "
                f"one window of {window} rows, so it yields no training windows. Lower "
                f"[data.window] length or use more data."
            )
    return features, targets, ignored, window


def build_dataset(table: Table, scan: DataScan, cfg: Config, model_input: ModelInput | None,
                  val_table: Table | None = None, val_scan: DataScan | None = None
                  ) -> Dataset:
    features, targets, ignored, window = check_fit(table, scan, cfg, model_input)
    stride = cfg.window.stride if cfg.window else 1
    scan = _with_sample(table, scan, cfg, window)
    x_all, y_all, rows_all = _columns(table, scan, features, targets)
    if val_table is not None:
        _require_columns(val_table, (*features, *targets))
        val_scan = _with_sample(val_table, val_scan or scan_table(
            val_table, scan_plan(cfg, val_table, window)), cfg, window)
        x_val, y_val, rows_val = _columns(val_table, val_scan, features, targets)
        train = _split("train", x_all, y_all, rows_all, table.path, 1, scan.n_rows, window,
                       stride)
        val = _split("validation", x_val, y_val, rows_val, val_table.path, 1, val_scan.n_rows,
                     window, stride)
        scans = [scan, val_scan]
    else:
        n = scan.n_rows
        cut = split_at(n, cfg)
        train = _split("train", x_all, y_all, rows_all, table.path, 1, cut, window, stride)
        val = (_split("validation", x_all, y_all, rows_all, table.path, cut + 1, n,
                      window, stride) if cfg.validation_split > 0 else None)
        scans = [scan]
    sampled = not all(s.sample is not None and s.sample.complete for s in scans)
    labels = _scan_labels(scans, targets, train, val) if sampled or cfg.outputs else None
    if cfg.inputs or cfg.outputs:  # several model inputs or outputs: columns grouped by name
        train = named_split(train, features, targets, cfg)
        val = named_split(val, features, targets, cfg) if val is not None else None
    notes = table.notes + (tuple(f"{val_table.path.name}: {n}" for n in val_table.notes)
                           if val_table is not None else ())
    return Dataset(features, targets, train, val, window, stride, ignored, sampled, labels,
                   inputs=cfg.inputs, outputs=cfg.outputs,
                   unused_columns=unused_columns(table, scan.columns, cfg, features, targets),
                   notes=notes, shards=scan.shards,
                   val_shards=val_scan.shards if val_table is not None and val_scan else None)


def _require_columns(table: Table, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"The validation file {table.path.name} lacks the column(s) "
                        f"{_list(missing)} of the training data. Its columns are: "
                        f"{_list(table.columns)}. Give both files the same columns.")


def _with_sample(table: Table, scan: DataScan, cfg: Config, window: int | None) -> DataScan:
    """The scan, scanned again only when its sample cannot hold this window length."""
    sample = scan.sample
    if sample is not None and (sample.complete or sample.run >= (window or 1)):
        return scan
    return scan_table(table, scan_plan(cfg, table, window))


def _columns(table: Table, scan: DataScan, features: tuple[str, ...],
             targets: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert scan.sample is not None
    index = {c: i for i, c in enumerate(table.columns)}
    values = scan.sample.values
    x = values[:, [index[f] for f in features]]
    y = values[:, [index[t] for t in targets]]
    return x, y, scan.sample.rows


def _scan_labels(scans: list[DataScan], targets: tuple[str, ...], train: Split,
                 val: Split | None) -> tuple[TargetStats, ...]:
    """Per scanned file (the data's, then a separate validation file's), per target."""
    out: list[TargetStats] = []
    for k, scan in enumerate(scans):
        split = "validation" if k else "train"
        for j, name in enumerate(targets):
            stats = scan.targets.get(name)
            if stats is not None:
                out.append(replace(stats, split=split))
            else:  # not planned: the sample's labels are what there is
                out += [s for s in _split_labels(name, j, train, val, len(scans) > 1)
                        if s.split == split]
    return tuple(out)


def _split_labels(name: str, j: int, train: Split, val: Split | None, separate: bool
                  ) -> list[TargetStats]:
    """The labels of target `name` (column j) held in the splits: one TargetStats for a file
    (the validation split cut from it included), one more for a separate validation file."""
    groups = [[train], [val]] if separate else [[train, val]]
    out = []
    for k, group in enumerate(groups):
        splits = [s for s in group if s is not None and s.n]
        values = np.concatenate([np.asarray(s.y)[:, j] for s in splits]) if splits else \
            np.empty(0)
        rows = np.concatenate([np.asarray(s.rows) for s in splits]) if splits else \
            np.empty(0, np.int64)
        out.append(replace(target_stats(name, values, rows),
                           split="validation" if k else "train"))
    return out


def _split(name: str, x: np.ndarray, y: np.ndarray, rows: np.ndarray, path: Path, first: int,
           last: int, window: int | None, stride: int) -> Split:
    """The samples of file rows first..last (a segment), from the rows held in x/y/rows."""
    lo, hi = np.searchsorted(rows, [first, last + 1])
    x, y, rows = x[lo:hi], y[lo:hi], rows[lo:hi]
    n_rows = max(0, last - first + 1)
    if window is None:
        return Split(name, x, y, rows, path, n_rows, n_rows)
    total = (n_rows - window) // stride + 1 if n_rows >= window else 0
    if total == 0 or rows.size < window:
        empty = np.zeros((0, window, x.shape[1]), dtype=np.float32)
        return Split(name, empty, y[:0], rows[:0], path, n_rows, total)
    view = np.moveaxis(np.lib.stride_tricks.sliding_window_view(x, window, axis=0), -1, 1)
    if rows.size == n_rows:  # the whole segment: every window, as a view
        xw = view[::stride]
        last_rows = np.arange(window - 1, n_rows, stride)[: xw.shape[0]]
        return Split(name, xw, y[last_rows], rows[last_rows], path, n_rows, total)
    # a sample: windows whose rows are all held, ending on the segment's stride grid
    ends = np.arange(window - 1, rows.size)
    whole = rows[ends] - rows[ends - window + 1] == window - 1
    aligned = (rows[ends] - first - (window - 1)) % stride == 0
    ends = ends[whole & aligned]
    return Split(name, np.ascontiguousarray(view[ends - window + 1]), y[ends], rows[ends],
                 path, n_rows, total)
