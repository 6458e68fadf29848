"""What `nandoc init` decides for a folder: which model and data, the target column, a window
length, the validation split and the custom-objects files, each decision with its reason.

Nothing of the user's is imported or run: the model's architecture is read by the loaders in
`nandoc.loading.model` from the config.json inside the .keras archive (or the model_config
attribute of an .h5 file), which is plain JSON; custom-objects files are parsed with `ast`, never
imported, by `nandoc.init.pyfiles`: a file is listed only when it defines a name the model
needs and does no work when imported, so a training script is never listed. The data file is
opened by `nandoc.loading.table` for its header, and read for its first rows and its row count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nandoc.errors import ConfigError, NandocError
from nandoc.init.imagesets import ImageFolders, find_image_folders
from nandoc.init.pyfiles import PyFile, read_folder
from nandoc.init.shardsets import ShardSet, find_shard_sets, shard_columns

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".npz")  # also compressed: data.csv.gz
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
    data: Path | None  # a file, or the glob of a shard set (`shard_sets`)
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
    custom_objects: tuple[Path, ...] = ()  # safe to import, and define a name the model needs
    custom_rule: str = ""
    custom_missing: tuple[str, ...] = ()  # needed names no listed file defines
    # (file, the needed names it defines) for files that run code when imported: not listed
    refused_python: tuple[tuple[PyFile, tuple[str, ...]], ...] = ()
    unreadable_python: tuple[PyFile, ...] = ()  # left out: they do not parse, or are too big
    unused_python: tuple[PyFile, ...] = ()  # define nothing the model names
    warnings: tuple[str, ...] = ()
    shard_sets: tuple[ShardSet, ...] = ()  # every shard set found, data or not
    images: ImageFolders | None = None  # the data is an image folder (`data`, `validation_file`)

    def shards(self, path: Path | None) -> ShardSet | None:
        """The shard set `path` (the data, the validation set, another) is the glob of."""
        return next((s for s in self.shard_sets if s.path == path), None)


# -- finding files ----------------------------------------------------------------------------


def _newest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (-p.stat().st_mtime, p.name))


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return _newest_first([p for p in folder.iterdir()
                          if p.is_file() and p.suffix.lower() in suffixes
                          and not p.name.startswith(".")])


def _data_files(folder: Path) -> list[Path]:
    """Data files by the loader's own rule: any case, compressed CSVs (`data.csv.gz`) too."""
    from nandoc.loading.encoding import split_suffix

    return _newest_first([p for p in folder.iterdir()
                          if p.is_file() and not p.name.startswith(".")
                          and split_suffix(p)[0] in DATA_SUFFIXES])


_VALIDATION_NAME = re.compile(r"(^|[^a-z])(val|valid|validation|dev)([^a-z]|$)", re.I)


def _with_shard_sets(folder: Path, files: list[Path]) -> tuple[list[Path], list[ShardSet]]:
    """The data candidates, newest first: the single files and the globs of the shard sets
    (here and in subfolders of shards), a set as new as its newest shard."""
    sets = find_shard_sets(folder)
    in_sets = {f for s in sets for f in s.files}
    newest = {s.path: s.mtime for s in sets}
    candidates = [p for p in files if p not in in_sets] + [s.path for s in sets]

    def when(p: Path) -> float:
        return newest[p] if p in newest else p.stat().st_mtime

    return sorted(candidates, key=lambda p: (-when(p), p.as_posix())), sets


def _pick_data(files: list[Path], folder: Path) -> tuple[Path | None, Path | None]:
    """(training data, validation data) among the candidates, newest first; a name (or a
    shard subfolder's name) like `val` marks validation data."""
    val = [p for p in files if _VALIDATION_NAME.search(p.relative_to(folder).as_posix())]
    train = [p for p in files if p not in val]
    if train:
        return train[0], (val[0] if val else None)
    return (files[0] if files else None), None


# -- reading the model's config ---------------------------------------------------------------


def read_model_facts(path: Path) -> ModelFacts:
    """Input shape, loss and custom objects from the saved config; never loads the model."""
    from nandoc.loading.model import (
        built_input_shape,
        inspect_model_file,
        saved_compile_config,
        saved_loss_name,
        summarise_config,
    )

    try:
        cfg = inspect_model_file(path)
        compiled = saved_compile_config(path, cfg)
    except Exception as exc:  # a broken file: check will explain it; init writes the path
        return ModelFacts(note=f"its saved config could not be read ({type(exc).__name__}); "
                               f"`nandoc check` will say why")
    saved = summarise_config(cfg)
    n_inputs = saved.n_inputs or 1
    first = saved.input_shape or (built_input_shape(cfg) if saved.n_inputs is None else None)
    return ModelFacts(input_shape=first if n_inputs == 1 else None, n_inputs=n_inputs,
                      loss=saved_loss_name(compiled), custom=tuple(sorted(saved.custom_names)),
                      lambda_layers=tuple(sorted(set(saved.lambda_layers))),
                      note="" if first else "its input shape is not in the saved config")


# -- reading the data's header ----------------------------------------------------------------


def _columns(path: Path) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """(columns, the numeric ones among the first rows, the row count). The loader validates
    the file and names the columns; the rest is a light read of the head and a row count."""
    import numpy as np
    import polars as pl

    from nandoc.loading.tablefile import open_table, read_head

    table = open_table(path)
    columns = tuple(table.columns)
    n_rows: int | None = None
    try:
        if table.kind == "csv":  # read as the loader reads it: its copy, comment lines, names
            head = read_head(table, SAMPLE_ROWS)
            numeric = tuple(c for c in columns if table.number_format(c) is not None
                            or head[c].str.strip_chars().cast(pl.Float64, strict=False)
                            .is_not_null().any())
            n_rows = int(pl.scan_csv(table.read_path, separator=table.separator,
                                     infer_schema=False, skip_lines=table.skip_lines,
                                     has_header=table.has_header)
                         .select(pl.len()).collect().item())
        elif table.kind == "parquet":
            schema = pl.scan_parquet(table.read_path).collect_schema()
            raw = dict(zip(columns, schema.names(), strict=False))
            numeric = tuple(c for c in columns if schema[raw.get(c, c)].is_numeric())
            n_rows = int(pl.scan_parquet(table.read_path).select(pl.len()).collect().item())
        else:
            numeric = columns
            with np.load(path, allow_pickle=False) as arrays:
                n_rows = int(len(arrays[arrays.files[0]])) if arrays.files else 0
    except Exception:  # the checks will say what is wrong with the file; init only guesses
        numeric = columns
    return columns, numeric, n_rows


def _data_columns(data: Path, shards: ShardSet | None
                  ) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    return shard_columns(shards, _columns) if shards is not None else _columns(data)


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


def _custom_objects(folder: Path, needed: tuple[str, ...]) -> dict[str, Any]:
    """The custom-objects decision, from READING the .py files (see `nandoc.init.pyfiles`):
    files that define a needed name and are safe to import are listed; those that define one
    but run code when imported, and those that could not be parsed, are only named."""
    files = read_folder(folder)
    readable = [f for f in files if not f.problem]
    hits = {f.path: tuple(n for n in needed if n in f.names) for f in readable}
    listed = [f for f in readable if hits[f.path] and not f.work]
    refused = [(f, hits[f.path]) for f in readable if hits[f.path] and f.work]
    found = {n for f in listed for n in hits[f.path]}
    missing = tuple(n for n in needed if n not in found)
    rule = ""
    if needed:
        named, them = ", ".join(needed), ("it" if len(needed) == 1 else "them")
        if listed:
            rule = f"the model refers to custom objects ({named}); these files define {them}"
        elif refused:
            rule = (f"the model refers to custom objects ({named}); the only files here that "
                    f"define {them} run code when imported, so custom_objects is left unset")
        elif readable:
            rule = (f"the model refers to custom objects ({named}); no .py file here defines "
                    f"{them}, so custom_objects is left unset")
        elif files:
            rule = (f"the model refers to custom objects ({named}); no .py file here could be "
                    f"read, so custom_objects is left unset")
        else:
            rule = f"the model refers to custom objects ({named}); no .py file was found here"
    return {"custom_objects": tuple(f.path for f in listed), "custom_rule": rule,
            "custom_missing": missing if needed else (), "refused_python": tuple(refused),
            "unreadable_python": tuple(f for f in files if f.problem),
            "unused_python": tuple(f for f in readable if not hits[f.path])}


def plan(folder: Path) -> Plan:
    """Look at `folder` and decide what its nandoc.toml says."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder. Run nandoc init in the folder that holds "
                          f"the model and the data, or pass that folder as the argument.")
    models = _files(folder, MODEL_SUFFIXES)
    data_files, shard_sets = _with_shard_sets(folder, _data_files(folder))
    if not models and not data_files:
        raise ConfigError(
            f"nandoc init found no model (.keras, .h5) and no data (.csv, .parquet, .npz) in "
            f"{folder}. It looks at that folder only (and at subfolders of CSV or parquet "
            f"shards): run it where the files are, or pass their folder (nandoc init "
            f"path/to/run)."
        )
    model = models[0] if models else None
    warnings: list[str] = []
    facts = read_model_facts(model) if model else ModelFacts()
    # a model of images (batch, height, width, channels) reads an image folder when there is one
    images = find_image_folders(folder) if facts.input_shape is not None and len(
        facts.input_shape) == 4 else None
    if images is not None:
        data, val_file = images.train, images.validation
    else:
        data, val_file = _pick_data(data_files, folder)
    if facts.n_inputs > 1:
        warnings.append(f"the model has {facts.n_inputs} inputs; nandoc feeds one table to one "
                        f"input, so only its model checks will run")
    columns: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    n_rows = None
    target: tuple[str, ...] = ()
    target_rule = ""
    if images is not None:
        n_rows = images.n_images
    elif data is not None:
        try:
            columns, numeric, n_rows = _data_columns(data, next(
                (s for s in shard_sets if s.path == data), None))
        except NandocError as exc:
            what = "shards" if data in {x.path for x in shard_sets} else "file"
            warnings.append(f"the data {what} could not be read: {exc}")
        target, target_rule = guess_target(columns, npz=data.suffix.lower() == ".npz")
    features = tuple(c for c in numeric if c not in target)
    window, window_rule = None, ""
    shape = facts.input_shape
    if shape is not None and len(shape) == 3:
        if shape[1] is not None:
            window, window_rule = shape[1], f"the model's input shape {shape_text(shape)}"
        else:
            window_rule = (f"the model takes sequences of any length {shape_text(shape)}: set "
                           f"the window length you train with")
    if shape is not None and columns and shape[-1] is not None and shape[-1] != len(features):
        warnings.append(
            f"the model expects {shape[-1]} features per row but {data.name if data else ''} "
            f"has {len(features)} numeric columns besides the target: list the model's "
            f"features in [data] features")
    split, validation_rule = _validation(n_rows, window)
    return Plan(folder=folder, model=model, data=data, other_models=tuple(models[1:]),
                other_data=tuple(p for p in data_files if p not in (data, val_file)),
                facts=facts, columns=columns, target=target, target_rule=target_rule,
                features=features, n_rows=n_rows, window=window, window_rule=window_rule,
                validation_split=split, validation_rule=validation_rule,
                validation_file=val_file, warnings=tuple(warnings),
                shard_sets=tuple(shard_sets), images=images,
                **_custom_objects(folder, facts.custom))


def shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
