"""nandoc.toml: parse, validate at the boundary, and merge command-line overrides."""

from __future__ import annotations

import codecs
import difflib
import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nandoc.errors import ConfigError
from nandoc.paths import require_file

DEFAULT_CONFIG_NAME = "nandoc.toml"
MAX_BATCH = 2**31 - 1  # TensorFlow indexes a batch with int32
MAX_EPOCHS = 10**6
MAX_WINDOW = 10**6  # rows per window
MAX_CONFIG_BYTES = 4 * 2**20
# The names keras.optimizers.get accepts (any case) and builds with default settings, in
# Keras 3.15; tests/test_hostile_resources.py checks this list against Keras itself.
KERAS_OPTIMIZERS = ("adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl",
                    "lion", "muon", "nadam", "rmsprop", "schedulefreeadamw", "sgd")


@dataclass(frozen=True)
class WindowConfig:
    length: int | None = None  # None: taken from the model's input shape (None, T, F)
    stride: int = 1
    label: str = "last"


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    epochs: int = 5
    shuffle: bool = False
    seed: int = 0
    optimizer: str | None = None
    learning_rate: float | None = None
    clipnorm: float | None = None


@dataclass(frozen=True)
class Config:
    model_path: Path | None = None
    custom_objects: tuple[Path, ...] = ()
    data_path: Path | None = None
    target: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    validation_split: float = 0.0
    validation_path: Path | None = None
    window: WindowConfig | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    source: Path | None = None  # the nandoc.toml this came from, if any
    unsafe: bool = False
    # Several model inputs / outputs: model input (output) name -> its columns or array keys.
    inputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    data_function: str | None = None  # [data] source = "file.py:function"

    def source_file(self) -> Path | None:
        """The Python file of `[data] source = "file.py:function"`, as nandoc will import it
        (None when there is none or the value is malformed: the loader says why)."""
        if not self.data_function:
            return None
        file, sep, _ = str(self.data_function).strip().rpartition(":")
        if not sep or not file.strip():
            return None
        path = Path(file.strip()).expanduser()
        base = self.source.parent if self.source is not None else Path.cwd()
        return path if path.is_absolute() else base / path

    def input_files(self, extra: dict[str, Path | None] | None = None) -> dict[str, Path]:
        """Role (as a message names it) -> path, for every file the run reads (`extra`: those
        named by options, such as replay's --from checkpoint): no output may replace one."""
        roles: dict[str, Path | None] = {
            **(extra or {}),
            "the model file": self.model_path,
            "the training data file": self.data_path,
            "the validation data file": self.validation_path,
            "the config file": self.source,
            "the [data] source file": self.source_file(),
        }
        for i, path in enumerate(self.custom_objects):
            roles["the custom_objects file" + (f" #{i + 1}" if len(self.custom_objects) > 1
                                               else "")] = path
        return {role: path for role, path in roles.items() if path is not None}


_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "model": {"path": (str,), "custom_objects": (list, str)},
    "data": {
        "path": (str,),
        "target": (str, list, dict),
        "features": (list,),
        "inputs": (dict,),
        "source": (str,),
        "validation_split": (float, int),
        "validation_path": (str,),
        "window": (dict,),
    },
    "data.window": {"length": (int,), "stride": (int,), "label": (str,)},
    "train": {
        "batch_size": (int,),
        "epochs": (int,),
        "shuffle": (bool,),
        "seed": (int,),
        "optimizer": (str,),
        "learning_rate": (float, int),
        "clipnorm": (float, int),
    },
}
_EXAMPLES = {
    "model.path": '"model.keras"', "model.custom_objects": '["losses.py"]',
    "data.path": '"data.csv"', "data.target": '"label"',
    "data.inputs": '{ numeric = ["age", "income"], tokens = "tokens" }',
    "data.source": '"data.py:make_dataset"', "data.features": '["a", "b"]',
    "data.validation_split": "0.2", "data.validation_path": '"val.csv"',
    "data.window": "{ length = 30 }", "data.window.length": "30", "data.window.stride": "1",
    "data.window.label": '"last"', "train.batch_size": "32", "train.epochs": "5",
    "train.shuffle": "false", "train.seed": "0", "train.optimizer": '"adam"',
    "train.learning_rate": "0.001", "train.clipnorm": "1.0",
}
_TYPE_WORDS = {str: "a string", list: "a list", float: "a number", int: "an integer",
               bool: "true or false", dict: "a table"}


def _check_table(where: str, table: Any, origin: Path) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"In {origin}, [{where}] must be a table of settings. "
                          f"See the schema in the README's configuration section.")
    allowed = _SCHEMA[where]
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(
                f"In {origin}, [{where}] has an unknown key '{key}'. The keys nandoc reads "
                f"there are: {', '.join(sorted(allowed))}. Fix the spelling or remove the key."
            )
        types = allowed[key]
        # bool is an int in Python; a bare `true` is never a valid number here.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            words = " or ".join(_TYPE_WORDS[t] for t in types)
            example = _EXAMPLES.get(f"{where}.{key}")
            hint = f" For example: {key} = {example}" if example else ""
            raise ConfigError(f"In {origin}, [{where}] {key} must be {words}, "
                              f"not {value!r}.{hint}")
    return table


def _str_list(value: Any, where: str, origin: Path) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"In {origin}, {where} must be a list of non-empty strings, "
                          f"not {value!r}.")
    return tuple(items)


def _name_map(value: Any, where: str, origin: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """{model input or output name: column(s) or array key(s)}, as pairs in the file's order."""
    if not isinstance(value, dict):
        raise ConfigError(f"In {origin}, {where} must be a table of model input (or output) "
                          f"names, e.g. {where.split()[-1]} = {{ numeric = [\"age\"], "
                          f"tokens = \"tokens\" }}.")
    out = []
    for name, cols in value.items():
        if not isinstance(cols, (str, list)):
            raise ConfigError(f"In {origin}, {where} '{name}' must be a column name (or array "
                              f"key) or a list of them, not {cols!r}.")
        out.append((str(name), _str_list(cols, f"{where} '{name}'", origin)))
    return tuple(out)


def _check_path_text(value: str, key: str, origin: Path) -> None:
    if not value.strip():
        raise ConfigError(f"In {origin}, {key} is empty; give a file path relative to the "
                          f"config's folder, or remove the key.")
    if "\x00" in value:
        raise ConfigError(f"In {origin}, {key} contains a NUL character; give a plain file "
                          f"path.")


def parse_config(text: str, origin: Path) -> Config:
    """Parse nandoc.toml text; paths are resolved against the file's folder."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}. Fix the syntax "
                          f"(`nandoc init` writes a commented example).") from None
    except RecursionError:
        raise ConfigError(f"{origin} nests arrays or tables inside each other too deeply to "
                          f"be read (hundreds of levels); a nandoc.toml needs at most three "
                          f"levels ([data.window], inputs = {{ a = [\"x\"] }}). Fix the file "
                          f"(`nandoc init` writes a commented example).") from None
    unknown = set(raw) - {"model", "data", "train"}
    if unknown:
        raise ConfigError(
            f"In {origin}, unknown section(s) {', '.join(f'[{u}]' for u in sorted(unknown))}. "
            f"nandoc reads [model], [data], [data.window] and [train]."
        )
    base = origin.parent
    model = _check_table("model", raw.get("model", {}), origin)
    data = _check_table("data", raw.get("data", {}), origin)
    window_raw = data.get("window")
    train = _check_table("train", raw.get("train", {}), origin)

    def path(value: str | None, key: str) -> Path | None:
        if value is None:
            return None
        _check_path_text(value, key, origin)
        return base / value

    inputs = _name_map(data.get("inputs", {}), "[data] inputs", origin)
    raw_target = data.get("target", [])
    outputs = _name_map(raw_target, "[data] target", origin) if isinstance(raw_target, dict) \
        else ()
    targets = (tuple(dict.fromkeys(c for _, cols in outputs for c in cols)) if outputs
               else _str_list(raw_target, "[data] target", origin))
    function = data.get("source")
    if function is not None:
        _check_path_text(function, "[data] source", origin)
    window = None
    if window_raw is not None:
        _check_table("data.window", window_raw, origin)
        window = WindowConfig(**window_raw)
    cfg = Config(
        model_path=path(model.get("path"), "[model] path"),
        custom_objects=tuple(path(p, "[model] custom_objects")  # type: ignore[misc]
                             for p in _str_list(model.get("custom_objects", []),
                                                "[model] custom_objects", origin)),
        data_path=path(data.get("path"), "[data] path"),
        target=targets,
        features=_str_list(data.get("features", []), "[data] features", origin),
        inputs=inputs, outputs=outputs, data_function=function,
        validation_split=float(data.get("validation_split", 0.0)),
        validation_path=path(data.get("validation_path"), "[data] validation_path"),
        window=window,
        train=TrainConfig(**{k: (float(v) if k in ("learning_rate", "clipnorm") else v)
                             for k, v in train.items()}),
        source=origin,
    )
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Range checks that hold whether values came from the file or the command line."""
    where = f"In {cfg.source}," if cfg.source else "In the settings,"
    if not 0.0 <= cfg.validation_split < 1.0:
        raise ConfigError(f"{where} [data] validation_split is {cfg.validation_split}; it must "
                          f"be at least 0 and below 1 (0.2 keeps the last 20% of rows).")
    if cfg.validation_split > 0 and cfg.validation_path is not None:
        raise ConfigError(f"{where} [data] sets both validation_split and validation_path; "
                          f"keep one of them.")
    if cfg.inputs and cfg.features:
        raise ConfigError(f"{where} [data] sets both features and inputs; inputs already names "
                          f"the columns of each model input: remove features.")
    if cfg.inputs and cfg.window is not None:
        raise ConfigError(f"{where} [data] sets inputs (several model inputs) and "
                          f"[data.window]; nandoc cuts windows for a single-input model only. "
                          f"Save the windows in an .npz (one array per input) instead.")
    if cfg.data_function is not None and cfg.data_path is not None:
        raise ConfigError(f"{where} [data] sets both path and source; keep one of them (source "
                          f"= \"data.py:make_dataset\" replaces the data file).")
    t = cfg.train
    for name, most in (("batch_size", MAX_BATCH), ("epochs", MAX_EPOCHS)):
        value = getattr(t, name)
        if not 1 <= value <= most:
            raise ConfigError(f"{where} [train] {name} is {value}; it must be a positive "
                              f"integer (at most {most:,}), e.g. {name} = 32.")
    if not 0 <= t.seed < 2**32:
        raise ConfigError(f"{where} [train] seed is {t.seed}; it must be an integer from 0 to "
                          f"2**32 - 1.")
    for name in ("learning_rate", "clipnorm"):
        value = getattr(t, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{where} [train] {name} is {value}; it must be positive (and "
                              f"finite).")
    if t.optimizer is not None and t.optimizer.lower() not in KERAS_OPTIMIZERS:
        close = difflib.get_close_matches(t.optimizer.lower(), KERAS_OPTIMIZERS, n=1)
        mean = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where} [train] optimizer is {t.optimizer!r}, which is not a Keras "
                          f"optimizer name.{mean} Keras knows: {', '.join(KERAS_OPTIMIZERS)}; "
                          f"or remove the key to train with the optimizer the model was "
                          f"compiled with.")
    w = cfg.window
    if w is not None:
        if w.length is not None and not 1 <= w.length <= MAX_WINDOW:
            raise ConfigError(f"{where} [data.window] length is {w.length}; it must be a "
                              f"positive number of rows (at most {MAX_WINDOW:,}).")
        if not 1 <= w.stride <= MAX_WINDOW:
            raise ConfigError(f"{where} [data.window] stride is {w.stride}; it must be at "
                              f"least 1 (and at most {MAX_WINDOW:,}).")
        if w.label != "last":
            raise ConfigError(f"{where} [data.window] label is {w.label!r}; nandoc supports "
                              f"\"last\" (the window's last row gives its label).")


def load_config(path: Path | None) -> Config:
    """Read `path`, or ./nandoc.toml when it exists, or return an empty config."""
    if path is None:
        default = Path.cwd() / DEFAULT_CONFIG_NAME
        if not os.path.lexists(default):
            return Config()
        path = default
    require_file(path, "config file", ConfigError,
                 fix="Pass an existing nandoc.toml file to --config, or run `nandoc init` to "
                     "write one.")
    try:
        size = path.stat().st_size
        raw = b"" if size > MAX_CONFIG_BYTES else path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The config file {path} could not be read "
                          f"({exc.strerror or exc}). Check its permissions.") from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"The config file {path} is {size / 2**20:,.0f} MiB; a nandoc.toml is "
                          f"a few hundred bytes of settings. Point --config at the right file.")
    return parse_config(_decode(raw, path), path)


def _decode(raw: bytes, path: Path) -> str:
    """UTF-8 text, with or without the byte-order mark Windows Notepad writes; any other
    encoding is named in the error."""
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise ConfigError(_not_utf8(path, f"it is {name} text: it starts with the {name} "
                                              f"byte-order mark"))
    if b"\x00" in raw[:4096]:
        raise ConfigError(_not_utf8(path, "it holds NUL bytes, as UTF-16 or UTF-32 text does"))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(path, f"byte {exc.start} cannot be decoded")) from None


def _not_utf8(path: Path, why: str) -> str:
    return (f"The config file {path} is not UTF-8 text ({why}); save it as UTF-8 TOML (in "
            f"Notepad: Save As, Encoding UTF-8), or point --config at the right file.")


def with_overrides(cfg: Config, *, model: Path | None = None, data: Path | None = None,
                   target: str | None = None, custom_objects: list[Path] | None = None,
                   seed: int | None = None, unsafe: bool = False) -> Config:
    """Command-line values win over the config file."""
    changes: dict[str, Any] = {"unsafe": unsafe or cfg.unsafe}
    if model is not None:
        changes["model_path"] = model
    if data is not None:
        changes["data_path"] = data
        changes["data_function"] = None  # DATA on the command line replaces [data] source
    if target:
        changes["target"] = tuple(t.strip() for t in target.split(",") if t.strip())
    if custom_objects:
        changes["custom_objects"] = tuple(custom_objects)
    if seed is not None:
        if not 0 <= seed < 2**32:
            raise ConfigError(f"--seed is {seed}; it must be an integer from 0 to 2**32 - 1, "
                              f"e.g. --seed 0.")
        changes["train"] = replace(cfg.train, seed=seed)
    out = replace(cfg, **changes)
    validate(out)
    return out
