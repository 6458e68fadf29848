"""`nandoc init`'s output: the commented nandoc.toml for a plan, written atomically, and the
summary for the terminal. Each guess is written down in a comment that says how it was made, so
the user can check it; an existing nandoc.toml is never overwritten without `force`, and the
file is written atomically (a complete file or none).
"""

from __future__ import annotations

import json
from pathlib import Path

from nandoc.config import DEFAULT_CONFIG_NAME
from nandoc.errors import ConfigError
from nandoc.init.plan import DEFAULT_BATCH_SIZE, Plan, plan, shape_text


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
        shape = (f"input {shape_text(p.facts.input_shape)}" if p.facts.input_shape
                 else p.facts.note)
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
        out += _custom_objects_lines(p)
    else:
        out.append("# No .keras or .h5 model in this folder: only the data checks will run.")
        out.append("# path = \"model.keras\"")
    out += ["", "[data]"]
    if p.images is not None:
        out += _image_lines(p)
    elif p.data is not None:
        rows = f"{p.n_rows} rows, " if p.n_rows is not None else ""
        which = (f"the newest of {len(p.other_data) + 1} data files here; " if p.other_data
                 else "")
        shards = p.shards(p.data)
        what = f"{_c(shards.describe())}; " if shards is not None else ""
        out.append(f"path = {_q(_rel(p.data, p.folder))}  # {which}{what}{rows}"
                   f"{len(p.columns)} columns")
        for other in p.other_data:
            kind = (f"other data here: {_c(p.shards(other).describe())}"
                    if p.shards(other) is not None else "another data file here")
            out.append(f"# path = {_q(_rel(other, p.folder))}  # {kind}")
        if p.target:
            value = _q(p.target[0]) if len(p.target) == 1 else \
                "[" + ", ".join(_q(t) for t in p.target) + "]"
            out.append(f"target = {value}  # GUESSED: {p.target_rule}")
        ignored = [c for c in p.columns if c not in p.target and c not in p.features]
        note = f"; left out as non-numeric: {', '.join(ignored)}" if ignored else ""
        out.append(f"features = []  # every other numeric column ({len(p.features)}{note})")
        if p.validation_file is not None:
            shards = p.shards(p.validation_file)
            what = f": {_c(shards.describe())}" if shards is not None else ""
            out.append(f"validation_path = {_q(_rel(p.validation_file, p.folder))}  # named "
                       f"like a validation set{what}")
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


def _image_lines(p: Plan) -> list[str]:
    """[data] for an image folder: no target or features (the labels are the class folders)."""
    im = p.images
    assert im is not None
    out = [f"path = {_q(_rel(im.train, p.folder))}  # {_c(im.describe())}; the model's input "
           f"sets the size the images are read at"]
    for other in p.other_data:
        out.append(f"# path = {_q(_rel(other, p.folder))}  # a data file here, not images")
    if im.validation is not None:
        out.append(f"validation_path = {_q(_rel(im.validation, p.folder))}  # named like a "
                   f"validation set: {im.val_images} images, classes matched by name")
    else:
        out.append(f"validation_split = {p.validation_split:g}  # {p.validation_rule}")
    return out


def _c(text: str) -> str:
    """Text safe in a one-line comment: control characters (a newline in a file name) escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _names(names: tuple[str, ...]) -> str:
    return _c(", ".join(names))


def _custom_objects_lines(p: Plan) -> list[str]:
    """[model] custom_objects: the files listed, and why the others are not."""
    out: list[str] = []
    if p.custom_objects:
        out.append(f"# {_c(p.custom_rule)}.")
        out.append("# nandoc check IMPORTS (runs) these files; keep only those you trust.")
        listed = ", ".join(_q(_rel(f, p.folder)) for f in p.custom_objects)
        out.append(f"custom_objects = [{listed}]")
        if p.custom_missing:
            out.append(f"# No file listed defines {_names(p.custom_missing)}: add the file "
                       f"that does.")
    elif p.facts.custom:
        out.append(f"# {_c(p.custom_rule)}: list the file that defines "
                   f"{'it' if len(p.facts.custom) == 1 else 'them'}.")
        out.append("# custom_objects = [\"losses.py\"]")
    for f, names in p.refused_python:
        out.append(f"# {_c(_rel(f.path, p.folder))} defines {_names(names)} but runs code when "
                   f"imported ({_c(f.work)}); move {_names(names)} into a file of "
                   f"{'its' if len(names) == 1 else 'their'} own, or put that code under "
                   f"`if __name__ == \"__main__\":`, then list it in custom_objects.")
    for f in p.unreadable_python:
        out.append(f"# {_c(_rel(f.path, p.folder))} is not listed: {_c(f.problem)}.")
    for f in p.unused_python:
        if f.work:
            out.append(f"# {_c(_rel(f.path, p.folder))}: a Python file here; the model does "
                       f"not name anything in it, and it runs code when imported "
                       f"({_c(f.work)}).")
        else:
            out.append(f"# custom_objects = [{_q(_rel(f.path, p.folder))}]  # a Python file "
                       f"here; the model does not name anything in it")
    return out


def summary(p: Plan, path: Path) -> str:
    """What init wrote, for the terminal."""
    lines = [f"Wrote {path}"]
    if p.model is not None:
        shape = shape_text(p.facts.input_shape) if p.facts.input_shape else "shape unknown"
        lines.append(f"  model   {p.model.name} (input {shape})")
    if p.images is not None:
        lines.append(f"  data    {_c(_rel(p.images.train, p.folder))} ({_c(p.images.describe())})")
        if p.images.validation is not None:
            lines.append(f"  validation  {_c(_rel(p.images.validation, p.folder))}")
    elif p.data is not None:
        shards = p.shards(p.data)
        lines.append(f"  data    {_c(_rel(p.data, p.folder))}"
                     + (f" ({len(shards.files)} {shards.kind} shards)" if shards else ""))
        if p.target:
            lines.append(f"  target  {', '.join(p.target)} (guessed: {p.target_rule})")
    if p.window is not None:
        lines.append(f"  window  {p.window} rows (from {p.window_rule})")
    if p.custom_objects:
        lines.append(f"  custom objects  {_c(', '.join(f.name for f in p.custom_objects))} "
                     f"(nandoc check will import them)")
    if p.custom_missing:
        missing = _names(p.custom_missing)
        lines.append(f"  custom objects  NONE LISTED for {missing}: no .py file here that is "
                     f"safe to import defines {'it' if len(p.custom_missing) == 1 else 'them'}")
        for f, names in p.refused_python:
            lines.append(f"    {_c(f.path.name)} defines {_names(names)} but runs code when "
                         f"imported ({_c(f.work)})")
    for w in p.warnings:
        lines.append(f"  warning: {w}")
    if p.custom_missing:
        lines.append(f"Set [model] custom_objects in the file to the .py file that defines "
                     f"{missing}, then run: nandoc check")
    else:
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
