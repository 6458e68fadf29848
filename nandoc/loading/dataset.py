"""Turn a scanned table into model-ready arrays: features, targets, validation split, windows.

The validation split is the LAST fraction of rows in file order, as Keras' validation_split
takes it; windows are cut inside each segment, so a validation segment shorter than one window
yields none. Every sample remembers the file row of its label, so findings can name rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.table import DataScan, Table, materialise


@dataclass(frozen=True)
class Split:
    name: str  # "train" or "validation"
    x: np.ndarray  # (n, F) or (n, T, F), float32, NaN where the file had a bad cell
    y: np.ndarray  # (n, k) float32
    rows: np.ndarray  # file row (from 1) of each sample's label row
    path: Path
    n_source_rows: int  # rows of the file segment the samples were cut from

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    features: tuple[str, ...]
    targets: tuple[str, ...]
    train: Split
    val: Split | None
    window: int | None  # rows per window, None for row-wise data
    stride: int
    ignored_columns: tuple[str, ...]  # non-numeric columns left out of the default features


@dataclass(frozen=True)
class ModelInput:
    """What the model expects: (None, F) rows or (None, T, F) sequences."""

    rank: int
    timesteps: int | None
    features: int | None

    @classmethod
    def of(cls, model) -> ModelInput:
        inputs = list(getattr(model, "inputs", None) or [])
        if len(inputs) != 1:
            names = ", ".join(getattr(t, "name", "?") for t in inputs)
            raise DataError(
                f"The model has {len(inputs)} inputs ({names}); nandoc feeds one table of "
                f"features to one input. Check a single-input model, or save a wrapper model "
                f"that concatenates the inputs."
            )
        shape = tuple(inputs[0].shape)
        if len(shape) == 2:
            return cls(2, None, shape[1])
        if len(shape) == 3:
            return cls(3, shape[1], shape[2])
        raise DataError(f"The model's input has shape {shape}; nandoc reads tabular rows "
                        f"(None, features) or windows of rows (None, timesteps, features).")


def select_columns(scan: DataScan, cfg: Config, source: Path) -> tuple[tuple[str, ...],
                                                                         tuple[str, ...],
                                                                         tuple[str, ...]]:
    """(features, targets, ignored non-numeric columns) after validating the names."""
    names = list(scan.columns)
    targets = cfg.target
    if not targets:
        defaults = [n for n in names if n == "y" or (n.startswith("y") and n[1:].isdigit())]
        if source.suffix.lower() == ".npz" and defaults:
            targets = tuple(defaults)
        else:
            raise DataError(
                f"nandoc needs to know the target column of {source.name}: set [data] target "
                f"in nandoc.toml or pass --target. The file's columns are: {_list(names)}."
            )
    for t in targets:
        if t not in scan.columns:
            raise DataError(f"The target column '{t}' is not in {source.name}. Its columns "
                            f"are: {_list(names)}.{_near(t, names)}")
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
    else:
        rest = [n for n in names if n not in targets]
        features = tuple(n for n in rest if scan.columns[n].numeric)
        ignored = [n for n in rest if not scan.columns[n].numeric]
        if not features:
            raise DataError(f"{source.name} has no numeric feature column besides the target "
                            f"({_list(targets)}); name the features in [data] features.")
    return tuple(features), tuple(targets), tuple(ignored)


def _list(names) -> str:
    names = list(names)
    shown = ", ".join(f"'{n}'" for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _near(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def build_dataset(table: Table, scan: DataScan, cfg: Config, model_input: ModelInput | None,
                  val_table: Table | None = None) -> Dataset:
    if scan.n_rows == 0:
        raise DataError(f"The data file {table.path} has a header but no data rows.")
    features, targets, ignored = select_columns(scan, cfg, table.path)
    window = _window_length(cfg, model_input, len(features))
    x_all, rows_all = _arrays(table, features)
    y_all, _ = _arrays(table, targets)
    if val_table is not None:
        x_val, rows_val = _arrays(val_table, features)
        y_val, _ = _arrays(val_table, targets)
        train = _split("train", x_all, y_all, rows_all, table.path, window, cfg)
        val = _split("validation", x_val, y_val, rows_val, val_table.path, window, cfg)
    else:
        n = x_all.shape[0]
        split_at = int(n * (1.0 - cfg.validation_split)) if cfg.validation_split > 0 else n
        train = _split("train", x_all[:split_at], y_all[:split_at], rows_all[:split_at],
                       table.path, window, cfg)
        val = (_split("validation", x_all[split_at:], y_all[split_at:], rows_all[split_at:],
                      table.path, window, cfg) if cfg.validation_split > 0 else None)
    if window is not None and train.n == 0:
        raise DataError(
            f"The training segment of {table.path.name} has {train.n_source_rows} rows, fewer "
            f"than one window of {window} rows, so it yields no training windows. Lower "
            f"[data.window] length or use more data."
        )
    stride = cfg.window.stride if cfg.window else 1
    return Dataset(features, targets, train, val, window, stride, ignored)


def _arrays(table: Table, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    values, rows = materialise(table, list(columns))
    return values.astype(np.float32), rows


def _window_length(cfg: Config, mi: ModelInput | None, n_features: int) -> int | None:
    configured = cfg.window.length if cfg.window else None
    where = f" (config: {cfg.source})" if cfg.source else ""
    if mi is None:
        return configured
    if mi.features is not None and mi.features != n_features:
        raise DataError(
            f"The model expects {mi.features} features per row but the data gives "
            f"{n_features}{where}. Set [data] features to the {mi.features} columns the model "
            f"was trained on, or check the target column."
        )
    if mi.rank == 2:
        if cfg.window is not None:
            raise DataError(f"[data.window] is set{where}, but the model takes single rows "
                            f"(None, {mi.features}), not windows. Remove [data.window].")
        return None
    if configured is None:
        if mi.timesteps is None:
            raise DataError(f"The model takes sequences of any length (None, None, "
                            f"{mi.features}); set [data.window] length to the window you "
                            f"train with.")
        return mi.timesteps
    if mi.timesteps is not None and configured != mi.timesteps:
        raise DataError(f"[data.window] length is {configured}{where}, but the model's input "
                        f"takes windows of {mi.timesteps} rows. Make them equal.")
    return configured


def _split(name: str, x: np.ndarray, y: np.ndarray, rows: np.ndarray, path: Path,
           window: int | None, cfg: Config) -> Split:
    n_rows = x.shape[0]
    if window is None:
        return Split(name, x, y, rows, path, n_rows)
    stride = cfg.window.stride if cfg.window else 1
    if n_rows < window:
        empty = np.zeros((0, window, x.shape[1]), dtype=np.float32)
        return Split(name, empty, y[:0], rows[:0], path, n_rows)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (n-L+1, F, L)
    xw = np.moveaxis(view, -1, 1)[::stride]
    last = np.arange(window - 1, n_rows, stride)[: xw.shape[0]]
    return Split(name, xw, y[last], rows[last], path, n_rows)
