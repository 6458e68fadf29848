"""Inputs from a live model and in-memory arrays, as `diagnose()` and the callback gather them.

The arrays take the place of the data file: they stay in memory and go through the loader's own
streaming scan (an in-memory table), so the same checks run unchanged. Rows are sample indices
counted from 1 (or the `rows` given, e.g. the rows of a batch in the user's dataset). For
sequence models, `x` holds windows (n, T, F); a column's statistics are taken over every
timestep, and a bad cell is reported at the window (sample) that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config, TrainConfig
from nandoc.engine.inputs import Inputs
from nandoc.errors import DataError
from nandoc.loading.table import ScanPlan

ARRAYS = "the arrays"  # how findings name in-memory data in their titles (it has no file)


def to_numpy(value: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
    """(float array, column names when the value carried them: a DataFrame or a Series)."""
    names = None
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # pandas / polars DataFrame
        names = [str(c) for c in value.columns]
        value = value.to_numpy()
    elif hasattr(value, "to_numpy") and hasattr(value, "name"):  # pandas / polars Series
        names = [str(value.name)] if value.name not in (None, "") else None
        value = value.to_numpy()
    elif hasattr(value, "numpy"):  # a tf.Tensor or a variable
        value = value.numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} could not be read as numbers ({exc}). Pass numeric arrays, "
                        f"or a DataFrame of numeric columns.") from None
    return arr, names


def _names(given: Sequence[str] | None, found: list[str] | None, n: int, prefix: str,
           what: str) -> tuple[str, ...]:
    names = list(given) if given is not None else found
    if names is None:
        names = [prefix] if n == 1 and prefix == "y" else [f"{prefix}{i}" for i in range(n)]
    if len(names) != n:
        raise DataError(f"{len(names)} {what} names were given for {n} columns; give one name "
                        f"per column.")
    if len(set(names)) != n:
        raise DataError(f"The {what} names {names} repeat a name; each column needs its own.")
    return tuple(str(s) for s in names)


def _scan(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], targets: tuple[str, ...],
          rows: np.ndarray, name: str):
    """The loader's own streaming scan, run on the arrays in memory (one row per sample, or per
    timestep of a window, each numbered with its sample's row). The bad-cell counts are then
    recounted per sample: a window counts once however many of its timesteps are bad."""
    from nandoc.loading.table import array_table, scan_table

    steps = x.shape[1] if x.ndim == 3 else 1
    flat_x = x.reshape(-1, x.shape[2]) if x.ndim == 3 else x
    flat_y = np.repeat(y, steps, axis=0)
    columns = {**{f: flat_x[:, i] for i, f in enumerate(features)},
               **{t: flat_y[:, i] for i, t in enumerate(targets)}}
    table = array_table(columns, np.repeat(rows, steps), name)
    scan = scan_table(table, ScanPlan(targets=targets))
    per_sample = _per_sample(x, y, features, targets, rows)
    scan = replace(scan, n_rows=len(rows), columns={
        c: replace(cs, n_rows=len(rows), **per_sample[c]) for c, cs in scan.columns.items()})
    return table, scan


def _per_sample(x: np.ndarray, y: np.ndarray, features: tuple[str, ...],
                targets: tuple[str, ...], rows: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per column, the bad-cell counts as samples holding one (a window counts once however many
    of its timesteps are bad) and the first such samples, named by `rows`."""
    from nandoc.loading.table import FIRST_ROWS, FLOAT32_MAX

    out = {}
    series = [(f, x[..., i]) for i, f in enumerate(features)] + \
        [(t, y[:, i]) for i, t in enumerate(targets)]
    for name, v in series:
        v = v.reshape(v.shape[0], -1)
        with np.errstate(invalid="ignore"):
            kinds = {"n_missing": np.zeros(v.shape, bool), "n_nan": np.isnan(v),
                     "n_posinf": v == np.inf, "n_neginf": v == -np.inf,
                     "n_overflow32": np.isfinite(v) & (np.abs(v) > FLOAT32_MAX)}
        counts: dict[str, Any] = {k: int(m.any(axis=1).sum()) for k, m in kinds.items()}
        bad = np.logical_or.reduce([m.any(axis=1) for m in kinds.values()])
        counts["bad_rows"] = tuple(int(r) for r in rows[bad][:FIRST_ROWS])
        out[name] = counts
    return out


def build_inputs(model: Any, x: Any, y: Any, *, loss: Any = None, batch_size: int = 32,
                 validation_split: float = 0.0, feature_names: Sequence[str] | None = None,
                 target_names: Sequence[str] | None = None, sources: Sequence[Any] = (),
                 rows: Sequence[int] | None = None, seed: int = 0, name: str = ARRAYS):
    """The checks' Inputs for a live model and in-memory arrays (what `load_inputs` builds from
    files)."""
    from nandoc.config import validate
    from nandoc.loading.dataset import Dataset, Split
    from nandoc.loading.table import ScannedFile

    cfg = Config(train=TrainConfig(batch_size=int(batch_size), seed=int(seed)),
                 validation_split=float(validation_split))
    validate(cfg)
    inputs = Inputs(config=cfg, model=model)
    if model is not None:
        inputs.loss = _losses(model, loss)
        if not inputs.loss:
            inputs.unavailable["loss"] = ("the model is not compiled and no loss= was given "
                                          "to diagnose()")
    inputs.sources = [_source(s) for s in sources]
    if x is None:
        inputs.unavailable["data"] = inputs.unavailable["scan"] = "no data was given"
        return inputs
    xa, x_names = to_numpy(x, "x")
    ya, y_names = to_numpy(y, "y")
    if xa.ndim == 1:
        xa = xa[:, None]
    if ya.ndim == 1:
        ya = ya[:, None]
    if xa.ndim not in (2, 3):
        raise DataError(f"x has shape {xa.shape}; nandoc reads rows (n, features) or windows "
                        f"(n, timesteps, features).")
    if ya.ndim != 2:
        ya = ya.reshape(ya.shape[0], -1)
    n = xa.shape[0]
    if ya.shape[0] != n:
        raise DataError(f"x has {n} samples but y has {ya.shape[0]}; give one target per "
                        f"sample.")
    if n == 0:
        raise DataError("x holds no samples; give at least one batch.")
    features = _names(feature_names, x_names, xa.shape[-1], "x", "feature")
    targets = _names(target_names, y_names, ya.shape[1], "y", "target")
    clash = set(features) & set(targets)
    if clash:
        raise DataError(f"The names {sorted(clash)} are both feature and target names; rename "
                        f"one of them (feature_names=..., target_names=...).")
    row_ids = np.arange(1, n + 1) if rows is None else np.asarray(rows, dtype=np.int64)
    if row_ids.shape != (n,):
        raise DataError(f"rows has {row_ids.size} entries for {n} samples; give one row number "
                        f"per sample.")
    cfg = replace(cfg, target=targets, features=features)
    inputs.config = cfg
    if model is not None:
        _check_shape(model, xa.shape)
    table, scan = _scan(xa, ya, features, targets, row_ids, name)
    inputs.scan = [ScannedFile(table, scan, "data")]
    x32, y32 = xa.astype(np.float32), ya.astype(np.float32)
    split_at = int(n * (1.0 - cfg.validation_split)) if cfg.validation_split > 0 else n
    path = Path(name)
    window = xa.shape[1] if xa.ndim == 3 else None

    def split(label: str, lo: int, hi: int) -> Split:
        return Split(label, x32[lo:hi], y32[lo:hi], row_ids[lo:hi], path, hi - lo,
                     in_memory=True)

    train = split("train", 0, split_at)
    val = split("validation", split_at, n) if cfg.validation_split > 0 else None
    inputs.data = Dataset(features, targets, train, val, window, 1, ())
    return inputs


def _check_shape(model: Any, shape: tuple[int, ...]) -> None:
    from nandoc.loading.dataset import ModelInput

    mi = ModelInput.of(model)
    want = (mi.timesteps, mi.features) if mi.rank == 3 else (mi.features,)
    got = shape[1:]
    if len(want) != len(got) or any(w is not None and w != g
                                    for w, g in zip(want, got, strict=True)):
        shown = ", ".join("None" if d is None else str(d) for d in want)
        raise DataError(f"The model takes inputs of shape (None, {shown}) but x has shape "
                        f"{shape}.")


def _losses(model: Any, loss: Any) -> list:
    from types import SimpleNamespace

    from nandoc.loading.model import describe_losses

    if loss is None:
        return describe_losses(model)
    # describe_losses reads `.loss` and `.output_names`: hand it the loss the caller gave.
    return describe_losses(SimpleNamespace(loss=loss,
                                           output_names=getattr(model, "output_names", None)))


def _source(s: Any):
    from nandoc.loading.custom_objects import SourceFile

    if isinstance(s, SourceFile):
        return s
    path = Path(s)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"The source file {path} could not be read ({exc.strerror}).") from None
    # Read for the static checks only: diagnose() never imports (runs) it; the live model
    # already holds the objects it defines.
    return SourceFile(path=path, text=text, objects={})


def describe(inputs: Inputs) -> dict[str, Any]:
    """What was examined, for the report: the live model's name and the arrays' name stand
    where a run from files names its files."""
    from nandoc.engine.diagnosis import describe_inputs

    described = describe_inputs(inputs)
    if inputs.model is not None and inputs.config.model_path is None:
        described = {"model": str(getattr(inputs.model, "name", "model")), **described}
    if inputs.data is not None and inputs.config.data_path is None:
        described["data"] = inputs.data.train.path.name
    return described
