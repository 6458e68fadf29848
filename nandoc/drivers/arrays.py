"""Inputs from a live model and in-memory arrays, as `diagnose()` and the callback gather them.

The arrays take the place of the data file: they stay in memory and go through the loader's own
streaming scan (an in-memory table), so the same checks run unchanged. Rows are sample indices
counted from 1 (or the `rows` given, e.g. the rows of a batch in the user's dataset). For
sequence models, `x` holds windows (n, T, F); a column's statistics are taken over every
timestep, and a bad cell is reported at the window (sample) that holds it.

Rows and windows of one input are read as a table of named columns, as above. Anything else is
read as arrays (`loading.array_data`), one statistics column per array, as an .npz is: an array
of the input's own shape (images, token ids), several inputs or outputs given as a dict by the
model's input (output) names or a list in its order, and no `y` for a model that computes its
own loss. Findings then name the model input or output an array feeds.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nandoc.config import Config, TrainConfig
from nandoc.engine.inputs import Inputs
from nandoc.errors import DataError
from nandoc.loading.structured import Port, Signature, batch_shape, shaped_for, split_at
from nandoc.loading.table import ScanPlan

ARRAYS = "the arrays"  # how findings name in-memory data in their titles (it has no file)


def to_numpy(value: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
    """(float array, column names when the value carried them: a DataFrame or a Series)."""
    value, names = _unwrap(value)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} could not be read as numbers ({exc}). Pass numeric arrays, "
                        f"or a DataFrame of numeric columns.") from None
    return arr, names


def as_array(value: Any, what: str) -> np.ndarray:
    """A numeric numpy array of samples in its own dtype (token ids stay integers)."""
    arr = np.asarray(_unwrap(value)[0])
    if arr.ndim == 0:
        raise DataError(f"{what} is one number, not an array with one entry per sample.")
    return arr if arr.dtype.kind in "biuf" else to_numpy(value, what)[0]


def _unwrap(value: Any) -> tuple[Any, list[str] | None]:
    names = None
    if hasattr(value, "columns") and hasattr(value, "to_numpy"):  # pandas / polars DataFrame
        names = [str(c) for c in value.columns]
        value = value.to_numpy()
    elif hasattr(value, "to_numpy") and hasattr(value, "name"):  # pandas / polars Series
        names = [str(value.name)] if value.name not in (None, "") else None
        value = value.to_numpy()
    elif hasattr(value, "numpy"):  # a tf.Tensor or a variable
        value = value.numpy()
    return value, names


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
            inputs.unavailable["loss"] = (
                "the model was compiled without a loss (it computes its own)"
                if getattr(model, "compiled", False) else "the model is not compiled"
            ) + " and no loss= was given to diagnose()"
    inputs.sources = [_source(s) for s in sources]
    if x is None:
        inputs.unavailable["data"] = inputs.unavailable["scan"] = "no data was given"
        return inputs
    sig = Signature.of(model) if model is not None else None
    x, x_key = by_name(x, sig.inputs if sig else (), "x")
    y, y_key = by_name(y, sig.outputs if sig else (), "y")
    if _read_as_arrays(sig, x, y):
        return _array_inputs(inputs, sig, x, y, (x_key, y_key), feature_names, target_names,
                             rows, name)
    xa, x_names = to_numpy(x, "x")
    if xa.ndim == 1:
        xa = xa[:, None]
    if xa.ndim not in (2, 3):
        raise DataError(f"x has shape {xa.shape}; nandoc reads rows (n, features) or windows "
                        f"(n, timesteps, features).")
    n = xa.shape[0]
    ya, y_names = to_numpy(y, "y") if y is not None else (np.zeros((n, 0)), None)
    if ya.ndim <= 1:
        ya = ya.reshape(-1, 1)
    if ya.ndim != 2:
        ya = ya.reshape(ya.shape[0], -1)
    if y_key is not None and y_names is None and ya.shape[1] == 1:
        y_names = [y_key]  # y given as {output name: array}
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
    row_ids = _row_ids(rows, n)
    cfg = replace(cfg, target=targets, features=features)
    inputs.config = cfg
    if sig is not None and sig.inputs:  # a subclassed model not built on Inputs has none
        _check_shape(model, xa.shape)
    table, scan = _scan(xa, ya, features, targets, row_ids, name)
    inputs.scan = [ScannedFile(table, scan, "data")]
    x32, y32 = xa.astype(np.float32), ya.astype(np.float32)
    cut = split_at(n, cfg)
    path = Path(name)
    window = xa.shape[1] if xa.ndim == 3 else None

    def split(label: str, lo: int, hi: int) -> Split:
        return Split(label, x32[lo:hi], y32[lo:hi], row_ids[lo:hi], path, hi - lo,
                     in_memory=True)

    train = split("train", 0, cut)
    val = split("validation", cut, n) if cfg.validation_split > 0 else None
    inputs.data = Dataset(features, targets, train, val, window, 1, ())
    return inputs


def _row_ids(rows: Sequence[int] | None, n: int) -> np.ndarray:
    row_ids = np.arange(1, n + 1) if rows is None else np.asarray(rows, dtype=np.int64)
    if row_ids.shape != (n,):
        raise DataError(f"rows has {row_ids.size} entries for {n} samples; give one row number "
                        f"per sample.")
    return row_ids


def _listed(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names) or "none"


def by_name(value: Any, ports: Sequence[Port], what: str) -> tuple[Any, str | None]:
    """`value` as the model's inputs (what="x") or outputs ("y") take it: a dict by the model's
    names, in its order, for several; one array, with the name it was keyed by (None when it
    came as one array), for a single one. A dict or list must match the model's names."""
    names = tuple(p.name for p in ports)
    word = "input" if what == "x" else "output"
    if isinstance(value, dict):
        given = {str(k): v for k, v in value.items()}
        for key in given if names else ():
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise DataError(
                    f"{what} has an array for '{key}', but the model has no {word} of that "
                    f"name; its {word}s are {_listed(names)}.{hint} Key {what} by the names "
                    f"the model was built with (keras.Input(name=...) for inputs, the output "
                    f"layers' names for outputs).")
        missing = [k for k in names if k not in given]
        if missing:
            raise DataError(f"{what} gives arrays for the model {word}(s) {_listed(given)} but "
                            f"not for {_listed(missing)}; the model needs one array for each "
                            f"of its {word}s {_listed(names)}.")
        given = {k: given[k] for k in names} if names else given
    elif isinstance(value, (list, tuple)) and (len(names) > 1 or (
            len(names) == 1 and len(value) == 1 and hasattr(value[0], "shape"))):
        if len(value) != len(names):
            raise DataError(f"{what} is a list of {len(value)} arrays, but the model has "
                            f"{len(names)} {word}s ({_listed(names)}); give one array per "
                            f"{word}, in that order, or a dict {{{word} name: array}}.")
        given = dict(zip(names, value, strict=True))
    else:
        if len(names) > 1 and value is not None:
            raise DataError(f"The model has {len(names)} {word}s ({_listed(names)}), but {what} "
                            f"is one array; give a dict {{{word} name: array}} or a list of "
                            f"arrays in the model's {word} order.")
        return value, None
    if len(given) == 1 and len(names) <= 1:
        ((key, only),) = given.items()
        return only, key
    return given, None


def _read_as_arrays(sig: Signature | None, x: Any, y: Any) -> bool:
    """Arrays, not a table of columns: several inputs or outputs, or an input that takes
    neither rows nor windows of rows (images, ...)."""
    if isinstance(x, dict) or isinstance(y, dict):
        return True
    if sig is None or not sig.inputs:
        return sig is None and np.ndim(x) >= 4
    return len(sig.inputs[0].shape) > 2


def _array_inputs(inputs: Inputs, sig: Signature | None, x: Any, y: Any,
                  keys: tuple[str | None, str | None], feature_names: Sequence[str] | None,
                  target_names: Sequence[str] | None, rows: Sequence[int] | None,
                  name: str) -> Inputs:
    """Inputs whose data are arrays by model input and output name (see the module)."""
    from nandoc.loading.array_data import array_dataset
    from nandoc.loading.structured import Arrays

    xs = _keyed(x, keys[0], feature_names, "x", "feature_names")
    ys = {} if y is None else _keyed(y, keys[1], target_names, "y", "target_names")
    xs = {k: as_array(v, _tag("x", k, xs)) for k, v in xs.items()}
    ys = {k: as_array(v, _tag("y", k, ys)) for k, v in ys.items()}
    ys = {k: v.reshape(-1, 1) if v.ndim == 1 else v for k, v in ys.items()}
    if sig is not None and sig.inputs:
        ports = {p.name: p for p in sig.inputs}
        xs = {k: _fit(v, ports.get(k, sig.inputs[0]), _tag("x", k, xs))
              for k, v in xs.items()}
    counts = {_tag(w, k, d): len(v) for w, d in (("x", xs), ("y", ys)) for k, v in d.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"The arrays hold different numbers of samples ("
                        f"{', '.join(f'{t}: {c}' for t, c in counts.items())}); give every input "
                        f"and target array one entry per sample, in the same order.")
    n = next(iter(counts.values()))
    if n == 0:
        raise DataError("x holds no samples; give at least one batch.")
    clash = set(xs) & set(ys)
    if clash:
        raise DataError(f"The name(s) {_listed(sorted(clash))} name both an input array and a "
                        f"target array; nandoc reports each array by its name, so each needs "
                        f"its own.")
    several_in, several_out = len(xs) > 1, len(ys) > 1
    cfg = replace(inputs.config, features=() if several_in else tuple(xs), target=tuple(ys),
                  inputs=tuple((k, (k,)) for k in xs) if several_in else (),
                  outputs=tuple((k, (k,)) for k in ys) if several_out else ())
    inputs.config = cfg
    # in memory ("arrays"): no file; the user's rows, in any order, name the samples
    inputs.data, inputs.scan = array_dataset(Arrays(xs, ys, tuple(xs), tuple(ys)),
                                             _row_ids(rows, n), cfg, Path(name), "arrays")
    return inputs


def _keyed(value: Any, key: str | None, names: Sequence[str] | None, what: str,
           option: str) -> dict[str, Any]:
    if isinstance(value, dict):
        if names is not None:
            raise DataError(f"{what} is keyed by the model's {'input' if what == 'x' else 'output'}"
                            f" names, which name its arrays in the report; leave {option} out.")
        return value
    if names is not None and len(names) != 1:
        raise DataError(f"{what} is read as one array fed whole to the model, not as columns of "
                        f"rows or windows; give {option} one name for it, or none.")
    return {str(names[0]) if names is not None else key or what: value}


def _tag(what: str, key: str, arrays: dict[str, Any]) -> str:
    return what if len(arrays) == 1 else f"{what}['{key}']"


def _fit(arr: np.ndarray, port: Port, label: str) -> np.ndarray:
    """`arr` in the shape of the model input `port` (a trailing axis of 1 added, as Keras
    does), or a DataError that shows both shapes."""
    fitted = shaped_for(arr, port)
    if fitted is None:
        named = "" if port.name.startswith("keras_tensor") else f" '{port.name}'"  # unnamed
        raise DataError(f"{label} has shape {arr.shape}, but the model input{named} takes "
                        f"arrays of shape {batch_shape(port)}, samples first; give it an array "
                        f"of that shape.")
    return fitted


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
