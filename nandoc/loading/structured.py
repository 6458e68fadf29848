"""Data that is not one table for one input: several named inputs and outputs, and arrays of any
rank (npz arrays, images, a source function's elements).

A model's inputs and outputs are matched by name (`[data] inputs`, a `[data] target` table); a
model with one input is still fed one array, of whatever rank it takes. Arrays are scanned with
one statistics column per array (`named.ArrayStats`): rows are sample indices from 1, and an
image folder adds each sample's file as its row name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.named import ArrayStats, Named
from nandoc.loading.stats import ColumnScan
from nandoc.loading.targets import TargetStats, target_stats


@dataclass(frozen=True)
class Port:
    """One model input or output: its name and its shape without the batch axis."""

    name: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    @classmethod
    def of(cls, model: Any) -> Signature:
        def ports(tensors: list[Any], names: list[str]) -> tuple[Port, ...]:
            return tuple(Port(names[i] if i < len(names) else str(getattr(t, "name", i)),
                              tuple(t.shape)[1:]) for i, t in enumerate(tensors))

        ins = list(getattr(model, "inputs", None) or [])
        outs = list(getattr(model, "outputs", None) or [])
        in_names = [str(getattr(t, "name", "")).split(":")[0] for t in ins]
        return cls(ports(ins, in_names),
                   ports(outs, list(getattr(model, "output_names", None) or [])))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.outputs)


def _listed(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in names) or "none"


def check_names(given: tuple[str, ...], model_names: tuple[str, ...], what: str,
                key: str) -> None:
    """Every name in `given` must be a model input (output); all of them must be given."""
    if not model_names:
        return
    for name in given:
        if name not in model_names:
            close = difflib.get_close_matches(name, model_names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DataError(f"[data] {key} names the model {what} '{name}', but the model has "
                            f"no {what} of that name; its {what}s are {_listed(model_names)}."
                            f"{hint} Use the names the model was built with "
                            f"(keras.Input(name=...), or the output layers' names).")
    missing = [n for n in model_names if n not in given]
    if missing and given:
        raise DataError(f"[data] {key} gives data for the model {what}(s) {_listed(given)} but "
                        f"not for {_listed(missing)}; the model needs every one of "
                        f"{_listed(model_names)}.")


def require_mapping(n: int, names: tuple[str, ...], cfg: Config, what: str) -> None:
    """A model with several inputs (outputs) needs the table that maps data to them."""
    given = cfg.inputs if what == "input" else cfg.outputs
    key = "inputs" if what == "input" else "target"
    if n > 1 and not given:
        example = ", ".join(f'{name} = ["..."]' for name in names[:3]) or 'a = ["..."]'
        raise DataError(
            f"The model has {n} {what}s ({_listed(names)}); tell nandoc which columns (or npz "
            f"array keys) feed each one, by name, in nandoc.toml: [data] {key} = {{ {example} }}."
        )
    if given:
        check_names(tuple(k for k, _ in given), names, what, key)


def named_split(split: Any, features: tuple[str, ...], targets: tuple[str, ...],
                cfg: Config) -> Any:
    """A table split whose columns are regrouped by model input and output (cfg's maps)."""
    x, y = split.x, split.y
    if cfg.inputs:
        where = {f: i for i, f in enumerate(features)}
        x = Named({name: x[..., [where[c] for c in cols]] for name, cols in cfg.inputs})
    if cfg.outputs:
        where = {t: i for i, t in enumerate(targets)}
        y = Named({name: y[..., [where[c] for c in cols]] for name, cols in cfg.outputs})
    return replace(split, x=x, y=y)


def check_widths(sig: Signature, cfg: Config) -> None:
    """Each named input's column count against the model input's width."""
    widths = {p.name: p.shape for p in sig.inputs}
    for name, cols in cfg.inputs:
        shape = widths.get(name)
        if shape is None:
            continue
        if len(shape) != 1:
            raise DataError(f"The model input '{name}' takes arrays of shape (None, "
                            f"{', '.join('None' if d is None else str(d) for d in shape)}), "
                            f"but [data] inputs feeds it {len(cols)} column(s) as one row each. "
                            f"Save arrays of that shape in an .npz and name the key instead.")
        if shape[0] is not None and shape[0] != len(cols):
            raise DataError(f"The model input '{name}' takes {shape[0]} values per sample but "
                            f"[data] inputs gives it {len(cols)} column(s) ({_listed(cols)}).")


def shaped_for(arr: np.ndarray, port: Port) -> np.ndarray | None:
    """`arr` as the model input `port` takes it: as is, or with a trailing axis of 1 added (as
    Keras adds it); None when its shape does not fit."""
    want, got = port.shape, arr.shape[1:]
    if len(got) == len(want) - 1 and want and want[-1] == 1:
        arr, got = arr[..., None], (*got, 1)
    if len(got) != len(want) or any(w is not None and w != g
                                    for w, g in zip(want, got, strict=True)):
        return None
    return arr


def batch_shape(port: Port) -> str:
    """The shape a model input takes, samples first: "(None, 8, 8, 1)"."""
    return "(" + ", ".join("None" if d is None else str(d) for d in (None, *port.shape)) + ")"


def fit_array(arr: np.ndarray, port: Port, key: str, file: str) -> np.ndarray:
    """`arr` shaped for the model input `port`, or a DataError naming the file's array."""
    fitted = shaped_for(arr, port)
    if fitted is None:
        raise DataError(f"In {file}, array '{key}' has shape {arr.shape}, but the model "
                        f"input '{port.name}' takes {batch_shape(port)}. Save the array in the "
                        f"shape the model takes (samples first).")
    return fitted


@dataclass(frozen=True)
class Arrays:
    """Model-ready arrays by data key, with the keys that feed each model input and output."""

    x: dict[str, np.ndarray]  # model input name (or the single input's key) -> array
    y: dict[str, np.ndarray]
    feature_keys: tuple[str, ...]
    target_keys: tuple[str, ...]


def pick_arrays(arrays: dict[str, np.ndarray], cfg: Config, sig: Signature | None,
                file: str) -> Arrays:
    """Which arrays of an npz (or a source) feed which model input and output."""
    keys = list(arrays)

    def need(key: str, role: str) -> np.ndarray:
        if key not in arrays:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DataError(f"{file} has no array '{key}' (named as {role}); its arrays are "
                            f"{_listed(keys)}.{hint}")
        return arrays[key]

    if cfg.outputs:
        y = {name: _join([need(c, f"target of '{name}'") for c in cols])
             for name, cols in cfg.outputs}
        tkeys = tuple(c for _, cols in cfg.outputs for c in cols)
    else:
        tkeys = cfg.target or tuple(k for k in keys if k == "y" or (k[:1] == "y" and
                                                                    k[1:].isdigit()))
        y = {k: need(k, "target") for k in tkeys}
    if cfg.inputs:
        x = {name: _join([need(c, f"input '{name}'") for c in cols]) for name, cols in cfg.inputs}
        fkeys = tuple(c for _, cols in cfg.inputs for c in cols)
    else:
        fkeys = cfg.features or tuple(k for k in keys if k not in tkeys)
        if not fkeys:
            raise DataError(f"{file} holds no array besides the target(s) {_listed(tkeys)}; "
                            f"save the inputs too, e.g. np.savez(path, x=images, y=labels).")
        x = {k: need(k, "feature") for k in fkeys}
    if sig is not None and len(sig.inputs) == 1 and len(x) > 1:
        raise DataError(f"{file} has several input arrays ({_listed(list(x))}) for a model with "
                        f"one input; name the one it takes: [data] features = [\"{fkeys[0]}\"], "
                        f"and the target with [data] target.")
    if sig is not None:
        if len(sig.inputs) == 1:
            (key, arr), = x.items()
            x = {key: fit_array(arr, sig.inputs[0], key, file)}
        else:
            ports = {p.name: p for p in sig.inputs}
            x = {name: fit_array(a, ports[name], name, file) for name, a in x.items()
                 if name in ports} or x
    lengths = {k: len(v) for k, v in {**x, **y}.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"In {file}, the arrays have different numbers of samples "
                        f"({', '.join(f'{k}: {n}' for k, n in lengths.items())}); give every "
                        f"array one entry per sample.")
    return Arrays(x, y, fkeys, tkeys)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


def as_float(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "biuf":
        raise DataError(f"An array of dtype {a.dtype} cannot be fed to a model as numbers; "
                        f"encode it as numbers (ids or floats) first.")
    return a.astype(np.float32, copy=False)


def label_stats(y: dict[str, np.ndarray], rows: np.ndarray) -> tuple[TargetStats, ...]:
    out = []
    for name, v in y.items():
        v = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
        out.append(target_stats(name, v.reshape(-1), np.repeat(rows, v.shape[1])))
    return tuple(out)


def scan_arrays(x: dict[str, np.ndarray], y: dict[str, np.ndarray], rows: np.ndarray
                ) -> dict[str, ColumnScan]:
    stats = ArrayStats(tuple(dict.fromkeys([*x, *y])))
    stats.add({**x, **y}, rows)
    return stats.result()


def feed_form(arrays: dict[str, np.ndarray], several: bool) -> Any:
    """One array for a single input (output), a Named for several."""
    if several:
        return Named({k: as_float(v) for k, v in arrays.items()})
    (v,) = arrays.values()
    v = as_float(v)
    return v if v.ndim >= 2 else v[:, None]


def split_at(n: int, cfg: Config) -> int:
    """Samples before the validation split: the last `validation_split` of n are held out."""
    return int(n * (1.0 - cfg.validation_split)) if cfg.validation_split > 0 else n
