"""The Python API: `diagnose(model, x, y)` runs nandoc's checks on a live model and in-memory
arrays and returns the same Report the command line renders.

The arrays take the place of the data file: they go through the loader's own streaming scan (as
a temporary .npz), and the same checks run unchanged. Rows are sample
indices counted from 1 (or the `rows` you pass, e.g. the indices of a batch in your dataset).
For sequence models, `x` holds windows (n, T, F); a column's statistics are taken over every
timestep, and a bad cell is reported at the window (sample) that holds it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc import __version__
from nandoc.config import Config, TrainConfig
from nandoc.core.report import CheckResult, Outcome, Report
from nandoc.errors import DataError

ARRAYS = "the arrays"  # what data findings name as their "file" while checks run; removed after


def _to_numpy(value: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
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
    """The loader's own streaming scan, run on the arrays: they are saved as a temporary .npz
    (one 1-D array per column) and read back through `open_table` and `scan_table`, so in-memory
    data is judged exactly like a file. Windows (n, T, F) are scanned timestep by timestep; the
    bad-cell counts and rows are then recounted per window, and rows renamed to `rows`."""
    import tempfile

    from nandoc.loading import table as tables

    flat_x = x.reshape(-1, x.shape[2]) if x.ndim == 3 else x
    flat_y = np.repeat(y, x.shape[1], axis=0) if x.ndim == 3 else y
    columns = {**{f: flat_x[:, i] for i, f in enumerate(features)},
               **{t: flat_y[:, i] for i, t in enumerate(targets)}}
    with tempfile.TemporaryDirectory(prefix="nandoc-") as tmp:
        path = Path(tmp) / "arrays.npz"
        np.savez(path, **columns)
        table = tables.open_table(path)
        plan = getattr(tables, "ScanPlan", None)
        scan = tables.scan_table(table, plan(targets=targets)) if plan else \
            tables.scan_table(table)
        if getattr(table, "memory", True) is None:  # a table that would read the file again
            raise DataError("nandoc could not hold the arrays in memory for the checks.")
    shown = Path(name)
    per_sample = _per_sample(x, y, features, targets, rows)
    scan = replace(scan, path=shown, n_rows=len(rows), columns={
        c: replace(cs, n_rows=len(rows), **per_sample[c]) for c, cs in scan.columns.items()})
    return replace(table, path=shown), scan


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
    from nandoc.engine.inputs import Inputs, ScannedFile
    from nandoc.config import validate
    from nandoc.loading.dataset import Dataset, Split

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
    xa, x_names = _to_numpy(x, "x")
    ya, y_names = _to_numpy(y, "y")
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
        return Split(label, x32[lo:hi], y32[lo:hi], row_ids[lo:hi], path, hi - lo)

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


def run(inputs, command: str, started: float | None = None,
        extra: dict[str, Any] | None = None) -> Report:
    """Every registered check on `inputs`, as a Report (broken check modules listed as failed)."""
    from nandoc.checks import load_all
    from nandoc.core.registry import all_checks
    from nandoc.pipeline import describe_inputs
    from nandoc.engine.runner import run_checks

    started = time.perf_counter() if started is None else started
    broken = load_all()
    ran = time.perf_counter()
    findings, results = run_checks(inputs, all_checks())
    results += [CheckResult(module.rsplit(".", 1)[-1], Outcome.FAILED, message=error)
                for module, error in sorted(broken.items())]
    done = time.perf_counter()
    name = inputs.data.train.path.name if inputs.data is not None and \
        inputs.config.data_path is None else None
    findings = [_unfiled(f, name) for f in findings]
    described = describe_inputs(inputs)
    if inputs.model is not None and inputs.config.model_path is None:
        described = {"model": str(getattr(inputs.model, "name", "model")), **described}
    if inputs.data is not None:
        described["data"] = name
    return Report.build(command, __version__, findings, checks=tuple(results),
                        inputs=described, extra=dict(extra or {}),
                        timings={"load_s": round(ran - started, 3),
                                 "checks_s": round(done - ran, 3),
                                 "total_s": round(done - started, 3)})


def _unfiled(f, name: str | None):
    """In-memory data has no file: drop the placeholder name from data findings' locations."""
    if name is not None and f.location.file == name:
        return f.with_(location=replace(f.location, file=None))
    return f


def diagnose(model: Any, x: Any, y: Any, *, loss: Any = None, batch_size: int = 32,
             validation_split: float = 0.0, feature_names: Sequence[str] | None = None,
             target_names: Sequence[str] | None = None, sources: Sequence[Any] = (),
             rows: Sequence[int] | None = None, seed: int = 0) -> Report:
    """Run nandoc's checks on a live Keras model and in-memory data; return the Report.

    `model`: a built Keras model (compiled, or pass `loss=`). `x`: (n, features) or windows
    (n, timesteps, features): numpy, a DataFrame (its column names become feature names) or a
    tensor. `y`: (n,) or (n, k). `validation_split`: the LAST fraction of samples, as Keras
    takes it. `sources`: custom-objects .py files to read (never imported) for the static
    checks. `rows`: the row number (from 1) of each sample in your own data, used in findings
    (default 1..n). The Report renders with `nandoc.render.render(report, Format.TEXT)`.
    """
    started = time.perf_counter()
    inputs = build_inputs(model, x, y, loss=loss, batch_size=batch_size,
                          validation_split=validation_split, feature_names=feature_names,
                          target_names=target_names, sources=sources, rows=rows, seed=seed)
    return run(inputs, "diagnose", started)
