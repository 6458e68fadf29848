"""Load the user's model in Keras safe mode, and describe its compiled loss."""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoc.errors import ModelLoadError
from nandoc.loading.archive import (
    RESAVE,
    h5_dataset_sizes,
    keras_archive_config,
    lower_suffix,
    parse_model_json,
    refuse_h5_bombs,
)
from nandoc.loading.model_code import StoredCode, foreign_names, stored_code
from nandoc.paths import require_file


@dataclass(frozen=True)
class LossInfo:
    """The compiled loss of one output, as nandoc needs it."""

    name: str  # e.g. binary_crossentropy, or the custom function's name
    fn: Any  # a callable (y_true, y_pred) -> loss
    builtin: bool
    from_logits: bool
    output: str | None  # the output it applies to, for multi-output models
    file: str | None = None  # for custom losses: where they are defined
    line: int | None = None


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def inspect_model_file(path: Path) -> dict[str, Any]:
    """Check that `path` is a saved Keras model, without importing Keras (fast, and nothing in
    the file runs); returns its architecture config. Every problem is a ModelLoadError."""
    require_file(path, "model file", ModelLoadError, folder="",
                 fix="Check [model] path in nandoc.toml or the MODEL argument.")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            raise ModelLoadError(
                f"{path} is a TensorFlow SavedModel folder, which Keras 3 cannot load for "
                f"training. Convert it: in the code that built the model, call "
                f"model.save('model.keras') and point nandoc at that file; if only the folder "
                f"is left, keras.layers.TFSMLayer('{path.name}', call_endpoint="
                f"'serving_default') loads it for inference, not for nandoc's checks."
            )
        raise ModelLoadError(f"The model path {path} is a folder; point it at a .keras or .h5 "
                             f"file.")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(f"nandoc cannot load {path.name}: models must be .keras or .h5 "
                             f"files saved with model.save().")
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        raise ModelLoadError(f"The model file {path} could not be read "
                             f"({exc.strerror or exc}). Check its permissions.") from None
    if not head:
        raise ModelLoadError(f"The model file {path} is empty (0 bytes). {RESAVE}")
    if suffix == ".keras":
        return keras_archive_config(path)
    if HDF5_SIGNATURE not in (head[:8], head[512:520]):
        raise ModelLoadError(f"The model file {path} is not an HDF5 file, so not a Keras .h5 "
                             f"model (it may be another format renamed, or corrupt). {RESAVE}")
    return _h5_config(path)


def _h5_config(path: Path) -> dict[str, Any]:
    try:
        import h5py
    except ImportError:  # Keras will say what is wrong
        return {}
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            training = f.attrs.get("training_config")
            weights_only = "layer_names" in f.attrs or any(
                k in f for k in ("layers", "vars", "model_weights"))
            sizes = h5_dataset_sizes(f)
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"The model file {path} is a damaged HDF5 file ({first}); it may be "
                             f"truncated by an interrupted copy or save. {RESAVE}") from None
    refuse_h5_bombs(path, sizes)
    if raw is None:
        what = ("holds weights only (model.save_weights), not the model" if weights_only
                else "is an HDF5 file but holds no Keras model")
        raise ModelLoadError(f"The model file {path} {what}; nandoc needs the architecture "
                             f"and compile settings too. {RESAVE}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except ValueError:
        raise ModelLoadError(f"The model file {path} has a damaged model config. "
                             f"{RESAVE}") from None
    config = parse_model_json(text, path, "model config")
    if isinstance(training, (bytes, str)):  # Keras parses it too when it compiles the model
        parse_model_json(training.decode("utf-8", "replace") if isinstance(training, bytes)
                         else training, path, "training config")
    return config if isinstance(config, dict) else {}


@dataclass(frozen=True)
class SavedModelSummary:
    """What a saved config says about a model, read without Keras. None where it cannot tell
    (subclassed models keep their structure in Python code)."""

    n_inputs: int | None
    n_outputs: int | None
    input_shape: tuple[int | None, ...] | None  # of the first input
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    lambda_layers: tuple[str, ...]  # layers whose code is stored in the file
    custom_names: tuple[str, ...] = ()  # functions and classes Keras does not define
    stored_code: tuple[StoredCode, ...] = ()  # lambdas stored as code outside Lambda layers
    foreign: tuple[str, ...] = ()  # `os.system`-like names from Python's own modules


def summarise_config(config: dict[str, Any]) -> SavedModelSummary:
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    kind = config.get("class_name")
    n_in = n_out = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    first_input: str | None = None
    if kind == "Sequential":
        n_in = n_out = 1
    elif kind in ("Functional", "Model") and "input_layers" in inner:
        ins, outs = inner.get("input_layers"), inner.get("output_layers")
        n_in, first_input = _endpoints(ins)
        n_out, _ = _endpoints(outs)
        inputs, outputs = _names(ins), _names(outs)
    shape = None
    lambdas: list[str] = []
    custom: list[str] = []
    for node in _walk(config):
        named = _custom_name(node)
        if named and named not in custom:
            custom.append(named)
        name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) \
            else None
        if node.get("class_name") == "Lambda":
            lambdas.append(str(name or "lambda"))
        if shape is None and node.get("class_name") == "InputLayer" and (
                first_input is None or name == first_input):
            cfg = node.get("config", {})
            shape = _shape(cfg.get("batch_shape")) or _shape(cfg.get("batch_input_shape"))
    if shape is None and n_in == 1:
        shape = _shape(inner.get("build_input_shape")) or _shape(
            (config.get("build_config") or {}).get("input_shape"))
    foreign = foreign_names(config)
    return SavedModelSummary(n_in, n_out, shape, inputs, outputs, tuple(lambdas),
                             tuple(c for c in custom if not any(f.endswith(f".{c}")
                                                                for f in foreign)),
                             stored_code(config), foreign)


def _custom_name(node: dict[str, Any]) -> str | None:
    """The name of a custom function or class a config node refers to, if it is one."""
    if "class_name" not in node or "module" not in node:
        return None
    module, name = node.get("module"), node.get("class_name")
    if module == "builtins" and name == "function" and isinstance(node.get("config"), str):
        return node["config"]  # a plain function, e.g. a custom loss
    registered = node.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        return registered.split(">")[-1]  # registered with keras.saving: "package>Name"
    if module and not str(module).startswith(("keras", "tensorflow", "tf_keras", "builtins")):
        return str(registered or name)
    return None


def _names(spec: Any) -> tuple[str, ...]:
    items = spec if isinstance(spec, list) and spec and isinstance(spec[0], list) else [spec]
    return tuple(o[0] for o in items if isinstance(o, list) and o and isinstance(o[0], str))


def _endpoints(spec: Any) -> tuple[int | None, str | None]:
    if not isinstance(spec, list) or not spec:
        return None, None
    if isinstance(spec[0], str):  # one endpoint, saved flat: ["name", 0, 0]
        return 1, spec[0]
    first = spec[0][0] if isinstance(spec[0], list) and spec[0] else None
    return len(spec), first if isinstance(first, str) else None


def _shape(value: Any) -> tuple[int | None, ...] | None:
    if isinstance(value, list) and value and all(d is None or isinstance(d, int) for d in value):
        return tuple(value)
    return None


def _walk(node: Any):
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def refuse_unsafe(path: Path, summary: SavedModelSummary, unsafe: bool) -> None:
    """Refuse a model whose file stores code, or names Python's own modules, before it is even
    handed to Keras."""
    if summary.foreign:
        name = summary.foreign[0]
        raise ModelLoadError(
            f"The model file {path} refers to `{name}`, which is not a Keras object or a "
            f"custom object: it belongs to Python's own library. A model file that names it "
            f"may be crafted to run commands on this machine; nandoc does not load it, with or "
            f"without --unsafe. If you built this model, save it again from the code that "
            f"built it; otherwise do not load it with Keras either.")
    if summary.lambda_layers and not unsafe:
        names = ", ".join(f"'{n}'" for n in summary.lambda_layers[:5])
        raise ModelLoadError(_unsafe_message(path, f"Lambda layer(s) {names}"))
    frozen = [c.where for c in summary.stored_code if not c.loadable]
    if frozen:
        raise ModelLoadError(
            f"The model {path} contains a lambda function stored as Python bytecode "
            f"({', '.join(frozen[:3])}): code in the file, which Keras safe mode refuses to "
            f"run; Keras 3 writes a lambda used this way but cannot rebuild it, even with "
            f"--unsafe. Re-save the model with a named function (def) in place of the lambda, "
            f"and give the file that defines it with --custom-objects.")
    code = [c.where for c in summary.stored_code]
    if code and not unsafe:
        raise ModelLoadError(_unsafe_message(path, f"a lambda function ({', '.join(code[:3])})"))
    if path.suffix.lower() in (".h5", ".hdf5") and saved_loss_name(
            saved_compile_config(path, {})) == "<lambda>":
        raise ModelLoadError(
            f"The model {path} was compiled with a lambda as its loss; an .h5 file keeps only "
            f"the name '<lambda>', not its code, so Keras cannot rebuild the loss (with or "
            f"without --unsafe). Compile the model with a named loss function (def) or a "
            f"keras.losses class, save it again, and give the file that defines a custom loss "
            f"with --custom-objects.")


def _unsafe_message(path: Path, what: str) -> str:
    return (f"The model {path} contains {what}: Python code stored in the file, which Keras "
            f"safe mode refuses to load. Loading it would execute that code, and code in a "
            f"file can do anything on this machine (read or delete files, send data). If you "
            f"trust who made the file, run nandoc again with --unsafe; otherwise re-save the "
            f"model with a named custom layer or function in place of the lambda and give its "
            f"file with --custom-objects.")


def load_model(path: Path, custom_objects: dict[str, Any], unsafe: bool) -> Any:
    """keras.saving.load_model with safe_mode unless `unsafe`; every failure is a paragraph."""
    summary = summarise_config(inspect_model_file(path))
    refuse_unsafe(path, summary, unsafe)
    import keras  # heavy: imported only once a model is really needed

    try:
        with warnings.catch_warnings(), lower_suffix(path) as keras_path:
            warnings.simplefilter("ignore")
            return keras.saving.load_model(keras_path, custom_objects=custom_objects,
                                           compile=True, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError...
        raise ModelLoadError(_explain_load_error(path, exc, summary, custom_objects)) from None


def _explain_load_error(path: Path, exc: Exception, summary: SavedModelSummary | None = None,
                        given: dict[str, Any] | None = None) -> str:
    msg = str(exc)
    if "safe_mode" in msg or "arbitrary code" in msg or "unsafe_deserialization" in msg:
        return _unsafe_message(path, "a Lambda layer or a lambda function")
    missing = re.search(r"Could not (?:locate|deserialize) (?:function|class|object) "
                        r"'?([\w.]+)'?", msg)
    if missing or "custom_objects" in msg or "Unknown" in msg:
        name = missing.group(1) if missing else _unknown_name(msg)
        others = [n for n in (summary.custom_names if summary else ())
                  if n != name and n not in (given or {})]
        names = ", ".join(f"'{n}'" for n in [name, *others])
        what = (f"a custom object {names}" if not others else f"custom objects {names}")
        return (f"The model {path} uses {what} that nandoc was not given. Add the Python file "
                f"that defines {'it' if not others else 'them'} to [model] custom_objects in "
                f"nandoc.toml, or pass --custom-objects FILE.py.")
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    first = re.sub(r"[A-Za-z0-9+/=]{40,}", "...", first)  # never a dump of stored bytecode
    return (f"The model file {path} could not be loaded by Keras ({type(exc).__name__}: "
            f"{first[:300]}). Check that it is a complete model saved with model.save() by "
            f"Keras 3.")


def _unknown_name(msg: str) -> str:
    m = re.search(r"Unknown \w+: '?([\w.]+)'?", msg)
    return m.group(1) if m else "?"


def describe_losses(model: Any) -> list[LossInfo]:
    """The compiled loss per output; empty when the model was saved without compiling."""
    import keras

    loss = getattr(model, "loss", None)
    if loss is None:
        return []
    names = list(getattr(model, "output_names", None) or [])
    if isinstance(loss, dict):
        return [_one(v, k, keras) for k, v in loss.items() if v is not None]
    if isinstance(loss, (list, tuple)):
        return [_one(v, names[i] if i < len(names) else str(i), keras)
                for i, v in enumerate(loss) if v is not None]
    return [_one(loss, None, keras)]


def _one(loss: Any, output: str | None, keras: Any) -> LossInfo:
    if isinstance(loss, str):
        obj = keras.losses.get(loss)
        return _one(obj, output, keras) if not isinstance(obj, str) else \
            LossInfo(loss, None, True, False, output)
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config() if hasattr(loss, "get_config") else {}
        fn = getattr(loss, "fn", None) or loss
        builtin = type(loss).__module__.startswith("keras") and (
            fn is loss or getattr(fn, "__module__", "").startswith("keras"))
        name = config.get("name") or getattr(fn, "__name__", type(loss).__name__)
        info = LossInfo(name, loss, builtin, bool(config.get("from_logits", False)), output)
        return info if builtin else with_source(info, fn if fn is not loss else type(loss))
    fn = loss
    builtin = getattr(fn, "__module__", "").startswith("keras")
    info = LossInfo(getattr(fn, "__name__", type(fn).__name__), fn, builtin, False, output)
    return info if builtin else with_source(info, fn)


def with_source(info: LossInfo, obj: Any) -> LossInfo:
    try:
        file = inspect.getsourcefile(obj)
        line = inspect.getsourcelines(obj)[1]
    except (TypeError, OSError):
        return info
    return LossInfo(info.name, info.fn, info.builtin, info.from_logits, info.output,
                    file=file, line=line)


def built_input_shape(config: dict[str, Any]) -> tuple[int | None, ...] | None:
    """The input shape Keras recorded when the model was built, if the config has one: what
    tells a subclassed model's input, whose structure is Python code and not in the config."""
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    return _shape(inner.get("build_input_shape")) or _shape(
        (config.get("build_config") or {}).get("input_shape"))


def saved_compile_config(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The compile settings saved with a model, read without Keras (nothing in the file runs):
    a .keras archive keeps them in its config, an .h5 file in its training_config attribute.
    `config` is what inspect_model_file returned; None when nothing was saved or readable."""
    if path.suffix.lower() == ".keras":
        compiled = config.get("compile_config")
        return compiled if isinstance(compiled, dict) else None
    import json

    try:
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("training_config")
        if raw is None:
            return None
        compiled = json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
    except Exception:  # h5py raises OSError, KeyError...; the loss is then just not named
        return None
    return compiled if isinstance(compiled, dict) else None


def saved_loss_name(compile_config: dict[str, Any] | None) -> str | None:
    """The loss named in saved compile settings: a built-in's name or a custom function's."""
    loss = (compile_config or {}).get("loss")
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        inner = loss.get("config")
        return inner if isinstance(inner, str) else loss.get("class_name")
    return None
