"""`nandoc init`: look at the model and data files in a folder and write a commented nandoc.toml.

Nothing of the user's is imported or run: the model's architecture is read from the config.json
inside the .keras archive (or the model_config attribute of an .h5 file), which is plain JSON;
custom-objects files are found by name and listed, never imported. The data file is read for its
header, the first rows and its row count. Each guess is written down in a comment that says how
it was made, so the user can check it. An existing nandoc.toml is never overwritten without
`force`, and the file is written atomically (a complete file or none).
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoc.config import DEFAULT_CONFIG_NAME
from nandoc.errors import ConfigError, NandocError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".npz")
# Column names that say "I am the target", compared case-insensitively, best first.
TARGET_NAMES = ("label", "labels", "target", "targets", "y", "class", "classes", "outcome",
                "output", "category")
DEFAULT_BATCH_SIZE = 32
DEFAULT_VALIDATION_SPLIT = 0.2
SAMPLE_ROWS = 200  # rows read to tell numeric columns from text ones


@dataclass(frozen=True)
class ModelFacts:
    """What the saved config says, read without loading the model."""

    input_shape: tuple[int | None, ...] | None = None
    n_inputs: int = 1
    loss: str | None = None
    custom: tuple[str, ...] = ()  # names of custom functions and classes the model refers to
    lambda_layers: tuple[str, ...] = ()
    note: str = ""  # why facts are missing, when they are


@dataclass(frozen=True)
class Plan:
    """What init found in the folder and what it decided, each decision with its reason."""

    folder: Path
    model: Path | None
    data: Path | None
    other_models: tuple[Path, ...] = ()
    other_data: tuple[Path, ...] = ()
    facts: ModelFacts = field(default_factory=ModelFacts)
    columns: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    target_rule: str = ""
    features: tuple[str, ...] = ()  # numeric non-target columns, as sampled
    n_rows: int | None = None
    window: int | None = None
    window_rule: str = ""
    validation_split: float = DEFAULT_VALIDATION_SPLIT
    validation_rule: str = ""
    validation_file: Path | None = None  # a file that looks like a validation set, if any
    custom_objects: tuple[Path, ...] = ()
    custom_rule: str = ""
    unused_python: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()


# -- finding files ----------------------------------------------------------------------------


def _newest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (-p.stat().st_mtime, p.name))


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return _newest_first([p for p in folder.iterdir()
                          if p.is_file() and p.suffix.lower() in suffixes
                          and not p.name.startswith(".")])


_VALIDATION_NAME = re.compile(r"(^|[^a-z])(val|valid|validation|dev)([^a-z]|$)", re.I)


def _pick_data(files: list[Path]) -> tuple[Path | None, Path | None]:
    """(training file, validation file) among the data files, newest first."""
    val = [p for p in files if _VALIDATION_NAME.search(p.stem)]
    train = [p for p in files if p not in val]
    if train:
        return train[0], (val[0] if val else None)
    return (files[0] if files else None), None


# -- reading the model's config ---------------------------------------------------------------


def _keras_config(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


def _h5_config(path: Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise KeyError("model_config")
        model = json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
        training = f.attrs.get("training_config")
        if training is not None:
            model["compile_config"] = json.loads(
                training if isinstance(training, str) else training.decode("utf-8"))
    return model


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _input_shapes(cfg: dict[str, Any]) -> list[tuple[int | None, ...]]:
    shapes = []
    for node in _walk(cfg.get("config", {})):
        if node.get("class_name") == "InputLayer" and isinstance(node.get("config"), dict):
            c = node["config"]
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            if shape:
                shapes.append(tuple(shape))
    if not shapes:
        built = (cfg.get("build_config") or {}).get("input_shape")
        if built and all(isinstance(d, (int, type(None))) for d in built):
            shapes.append(tuple(built))
    return shapes


def _loss_name(compile_config: dict[str, Any] | None) -> str | None:
    loss = (compile_config or {}).get("loss")
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        c = loss.get("config")
        return c if isinstance(c, str) else loss.get("class_name")
    return None


def _custom_names(cfg: dict[str, Any]) -> tuple[list[str], list[str]]:
    custom, lambdas = [], []
    for node in _walk(cfg):
        if "class_name" not in node or "module" not in node:
            continue
        module, name = node.get("module"), node.get("class_name")
        if name == "Lambda":
            inner = node.get("config")
            lambdas.append(inner.get("name", "lambda") if isinstance(inner, dict) else "lambda")
        elif module == "builtins" and name == "function" and isinstance(node.get("config"), str):
            custom.append(node["config"])
        elif module and not str(module).startswith(("keras", "tensorflow", "tf_keras",
                                                    "builtins")):
            custom.append(str(node.get("registered_name") or name).split(">")[-1])
    return sorted(set(custom)), sorted(set(lambdas))


def read_model_facts(path: Path) -> ModelFacts:
    """Input shape, loss and custom objects from the saved config; never loads the model."""
    try:
        cfg = _keras_config(path) if path.suffix.lower() == ".keras" else _h5_config(path)
    except Exception as exc:  # a broken archive: check will explain it; init writes the path
        return ModelFacts(note=f"its saved config could not be read ({type(exc).__name__}); "
                               f"`nandoc check` will say why")
    shapes = _input_shapes(cfg)
    custom, lambdas = _custom_names(cfg)
    return ModelFacts(input_shape=shapes[0] if len(shapes) == 1 else None,
                      n_inputs=len(shapes) or 1, loss=_loss_name(cfg.get("compile_config")),
                      custom=tuple(custom), lambda_layers=tuple(lambdas),
                      note="" if shapes else "its input shape is not in the saved config")


# -- reading the data's header ----------------------------------------------------------------


def _separator(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.readline(65536).decode("utf-8", errors="replace")
    if path.suffix.lower() == ".tsv" or ("\t" in head and "," not in head):
        return "\t"
    if ";" in head and "," not in head:
        return ";"
    return ","


def _columns(path: Path) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """(columns, the numeric ones among the first rows, the row count). The loader validates
    the file and names the columns; the rest is a light read of the head and a row count."""
    import numpy as np
    import polars as pl

    from nandoc.loading.table import open_table

    table = open_table(path)
    columns = tuple(table.columns)
    n_rows: int | None = None
    try:
        if table.kind == "csv":
            sep = getattr(table, "separator", None) or _separator(path)
            head = pl.read_csv(path, separator=sep, n_rows=SAMPLE_ROWS, infer_schema=False,
                               encoding="utf8-lossy")
            numeric = tuple(c for c in columns if head[c].str.strip_chars()
                            .cast(pl.Float64, strict=False).is_not_null().any())
            n_rows = int(pl.scan_csv(path, separator=sep, infer_schema=False)
                         .select(pl.len()).collect().item())
        elif table.kind == "parquet":
            schema = pl.scan_parquet(path).collect_schema()
            numeric = tuple(c for c in columns if schema[c].is_numeric())
            n_rows = int(pl.scan_parquet(path).select(pl.len()).collect().item())
        else:
            numeric = columns
            with np.load(path, allow_pickle=False) as arrays:
                n_rows = int(len(arrays[arrays.files[0]])) if arrays.files else 0
    except Exception:  # the checks will say what is wrong with the file; init only guesses
        numeric = columns
    return columns, numeric, n_rows


def guess_target(columns: tuple[str, ...], npz: bool = False) -> tuple[tuple[str, ...], str]:
    """The target column(s) and the rule that picked them."""
    if npz:
        ys = tuple(c for c in columns if c == "y" or re.fullmatch(r"y\d+", c))
        if ys:
            return ys, "the npz archive's array 'y'"
    lowered = {c.lower(): c for c in columns}
    for name in TARGET_NAMES:
        if name in lowered:
            return (lowered[name],), f"a column named '{lowered[name]}'"
    for c in columns:
        if re.match(r"(label|target)[_\W]", c, re.I):
            return (c,), f"the column '{c}' is named like a target"
    if columns:
        return (columns[-1],), (f"no column is named label/target/y/class, so the LAST column "
                                f"'{columns[-1]}' was taken")
    return (), "the file has no columns"


# -- deciding ----------------------------------------------------------------------------------


def _validation(n_rows: int | None, window: int | None) -> tuple[float, str]:
    split = DEFAULT_VALIDATION_SPLIT
    rule = "the last 20% of rows, as Keras' validation_split takes them"
    if n_rows and window:
        needed = window / n_rows  # the validation segment must hold at least one window
        if n_rows * split < window:
            split = min(0.5, math.ceil(needed * 1.25 * 100) / 100)
            rule = (f"raised from 0.2 so that the last {split:.0%} of {n_rows} rows hold at "
                    f"least one window of {window} rows")
            if n_rows * split < window:
                rule = (f"{n_rows} rows are too few for a validation window of {window} rows; "
                        f"use a separate validation_path or more data")
    return split, rule


def _python_files(folder: Path, names: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """(.py files that define one of `names`, the other .py files), by reading their text."""
    defining, other = [], []
    for p in sorted(folder.glob("*.py")):
        try:
            text = p.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(re.search(rf"^\s*(def|class)\s+{re.escape(n)}\b", text, re.M) for n in names):
            defining.append(p)
        else:
            other.append(p)
    return defining, other


def plan(folder: Path) -> Plan:
    """Look at `folder` and decide what its nandoc.toml says."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder. Run nandoc init in the folder that holds "
                          f"the model and the data, or pass that folder as the argument.")
    models = _files(folder, MODEL_SUFFIXES)
    data_files = _files(folder, DATA_SUFFIXES)
    if not models and not data_files:
        raise ConfigError(
            f"nandoc init found no model (.keras, .h5) and no data (.csv, .parquet, .npz) in "
            f"{folder}. It looks at that folder only, not its subfolders: run it where the "
            f"files are, or pass their folder (nandoc init path/to/run)."
        )
    model = models[0] if models else None
    data, val_file = _pick_data(data_files)
    warnings: list[str] = []
    facts = read_model_facts(model) if model else ModelFacts()
    if facts.n_inputs > 1:
        warnings.append(f"the model has {facts.n_inputs} inputs; nandoc feeds one table to one "
                        f"input, so only its model checks will run")
    columns: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    n_rows = None
    target: tuple[str, ...] = ()
    target_rule = ""
    if data is not None:
        try:
            columns, numeric, n_rows = _columns(data)
        except NandocError as exc:
            warnings.append(f"the data file could not be read: {exc}")
        target, target_rule = guess_target(columns, npz=data.suffix.lower() == ".npz")
    features = tuple(c for c in numeric if c not in target)
    window, window_rule = None, ""
    shape = facts.input_shape
    if shape is not None and len(shape) == 3:
        if shape[1] is not None:
            window, window_rule = shape[1], f"the model's input shape {_shape(shape)}"
        else:
            window_rule = (f"the model takes sequences of any length {_shape(shape)}: set the "
                           f"window length you train with")
    if shape is not None and columns and shape[-1] is not None and shape[-1] != len(features):
        warnings.append(
            f"the model expects {shape[-1]} features per row but {data.name if data else ''} "
            f"has {len(features)} numeric columns besides the target: list the model's "
            f"features in [data] features")
    split, validation_rule = _validation(n_rows, window)
    custom_objects: list[Path] = []
    custom_rule = ""
    defining, other_py = _python_files(folder, facts.custom)
    if facts.custom:
        custom_objects = defining or other_py
        named = ", ".join(facts.custom)
        custom_rule = (f"the model refers to custom objects ({named}); "
                       + ("these files define them" if defining else
                          "no file here defines them by name, so every .py file is listed"))
        other_py = [p for p in other_py if p not in custom_objects]
    return Plan(folder=folder, model=model, data=data, other_models=tuple(models[1:]),
                other_data=tuple(p for p in data_files if p not in (data, val_file)),
                facts=facts, columns=columns, target=target, target_rule=target_rule,
                features=features, n_rows=n_rows, window=window, window_rule=window_rule,
                validation_split=split, validation_rule=validation_rule,
                validation_file=val_file, custom_objects=tuple(custom_objects),
                custom_rule=custom_rule, unused_python=tuple(other_py),
                warnings=tuple(warnings))


# -- writing -----------------------------------------------------------------------------------


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _rel(p: Path, folder: Path) -> str:
    try:
        return p.relative_to(folder).as_posix()
    except ValueError:
        return p.as_posix()


def render_toml(p: Plan) -> str:
    """The commented nandoc.toml for a plan."""
    out = ["# nandoc.toml written by `nandoc init`. Every guess below says how it was made:",
           "# check them, then run `nandoc check`. Paths are relative to this file.", ""]
    for w in p.warnings:
        out.append(f"# WARNING: {w}.")
    if p.warnings:
        out.append("")
    out.append("[model]")
    if p.model is not None:
        shape = f"input {_shape(p.facts.input_shape)}" if p.facts.input_shape else p.facts.note
        loss = f", loss {p.facts.loss}" if p.facts.loss else ""
        which = (f"the newest of {len(p.other_models) + 1} models here" if p.other_models
                 else "the model here")
        out.append(f"path = {_q(_rel(p.model, p.folder))}  # {which}: {shape}{loss}")
        for other in p.other_models:
            out.append(f"# path = {_q(_rel(other, p.folder))}  # another model in this folder")
        if p.facts.lambda_layers:
            out.append(f"# The model has Lambda layers ({', '.join(p.facts.lambda_layers)}): "
                       f"loading them runs code stored in the file, so `nandoc check` refuses "
                       f"unless you pass --unsafe.")
        if p.custom_objects:
            out.append(f"# {p.custom_rule}.")
            out.append("# nandoc check IMPORTS (runs) these files; keep only those you trust.")
            listed = ", ".join(_q(_rel(f, p.folder)) for f in p.custom_objects)
            out.append(f"custom_objects = [{listed}]")
        elif p.facts.custom:
            out.append(f"# {p.custom_rule}; no .py file was found here: add the file that "
                       f"defines them.")
            out.append("# custom_objects = [\"losses.py\"]")
        for py in p.unused_python:
            out.append(f"# custom_objects = [{_q(_rel(py, p.folder))}]  # a Python file here; "
                       f"the model does not name anything in it")
    else:
        out.append("# No .keras or .h5 model in this folder: only the data checks will run.")
        out.append("# path = \"model.keras\"")
    out += ["", "[data]"]
    if p.data is not None:
        rows = f"{p.n_rows} rows, " if p.n_rows is not None else ""
        which = (f"the newest of {len(p.other_data) + 1} data files here; " if p.other_data
                 else "")
        out.append(f"path = {_q(_rel(p.data, p.folder))}  # {which}{rows}"
                   f"{len(p.columns)} columns")
        for other in p.other_data:
            out.append(f"# path = {_q(_rel(other, p.folder))}  # another data file here")
        if p.target:
            value = _q(p.target[0]) if len(p.target) == 1 else \
                "[" + ", ".join(_q(t) for t in p.target) + "]"
            out.append(f"target = {value}  # GUESSED: {p.target_rule}")
        ignored = [c for c in p.columns if c not in p.target and c not in p.features]
        note = f"; left out as non-numeric: {', '.join(ignored)}" if ignored else ""
        out.append(f"features = []  # every other numeric column ({len(p.features)}{note})")
        if p.validation_file is not None:
            out.append(f"validation_path = {_q(_rel(p.validation_file, p.folder))}  # named "
                       f"like a validation set")
        else:
            out.append(f"validation_split = {p.validation_split:g}  # {p.validation_rule}")
    else:
        out.append("# No .csv, .parquet or .npz data in this folder: only the model checks run.")
        out.append("# path = \"data.csv\"")
        out.append("# target = \"label\"")
    if p.window is not None or p.window_rule:
        out += ["", "[data.window]  # the model reads windows of consecutive rows"]
        if p.window is not None:
            out.append(f"length = {p.window}  # from {p.window_rule}")
        else:
            out.append(f"# length = 30  # {p.window_rule}")
        out.append("stride = 1")
        out.append("label = \"last\"  # a window's label is its last row's target")
    out += ["", "[train]",
            f"batch_size = {DEFAULT_BATCH_SIZE}  # Keras' default; set the batch size you "
            f"train with (the saved model does not record it)",
            "epochs = 5", "shuffle = false", "seed = 0", ""]
    return "\n".join(out)


def summary(p: Plan, path: Path) -> str:
    """What init wrote, for the terminal."""
    lines = [f"Wrote {path}"]
    if p.model is not None:
        shape = _shape(p.facts.input_shape) if p.facts.input_shape else "shape unknown"
        lines.append(f"  model   {p.model.name} (input {shape})")
    if p.data is not None:
        lines.append(f"  data    {p.data.name}")
        if p.target:
            lines.append(f"  target  {', '.join(p.target)} (guessed: {p.target_rule})")
    if p.window is not None:
        lines.append(f"  window  {p.window} rows (from {p.window_rule})")
    if p.custom_objects:
        lines.append(f"  custom objects  {', '.join(f.name for f in p.custom_objects)} "
                     f"(nandoc check will import them)")
    for w in p.warnings:
        lines.append(f"  warning: {w}")
    lines.append("Check the guesses in the file, then run: nandoc check")
    return "\n".join(lines) + "\n"


def write_config(folder: Path, *, force: bool = False) -> tuple[Path, Plan]:
    """Write FOLDER/nandoc.toml atomically; refuse to replace an existing one unless `force`."""
    from nandoc.atomic import Exists, write_text_atomic

    target = folder / DEFAULT_CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(_exists(target))
    p = plan(folder)
    try:
        write_text_atomic(target, render_toml(p), replace=force)
    except Exists:
        raise ConfigError(_exists(target)) from None
    except OSError as exc:
        raise ConfigError(f"Could not write {target} ({exc.strerror or exc}). Check that the "
                          f"folder is writable.") from None
    return target, p


def _exists(target: Path) -> str:
    return (f"{target} already exists, and nandoc init never overwrites a config. Edit it by "
            f"hand, or run nandoc init --force to replace it with a new one.")
