"""Load the user's model in Keras safe mode, and describe its compiled loss."""

from __future__ import annotations

import inspect
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoc.errors import ModelLoadError


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


def load_model(path: Path, custom_objects: dict[str, Any], unsafe: bool) -> Any:
    """keras.saving.load_model with safe_mode unless `unsafe`; every failure is a paragraph."""
    if not path.exists():
        raise ModelLoadError(f"The model file {path} does not exist. Check [model] path in "
                             f"nandoc.toml or the MODEL argument.")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise ModelLoadError(
                f"{path} is a TensorFlow SavedModel folder, which Keras 3 cannot load for "
                f"training. Re-save the model from the code that built it with "
                f"model.save('model.keras'), or load the folder with "
                f"keras.layers.TFSMLayer for inference only."
            )
        raise ModelLoadError(f"The model path {path} is a folder; point it at a .keras or .h5 "
                             f"file.")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelLoadError(f"nandoc cannot load {path.name}: models must be .keras or .h5 "
                             f"files saved with model.save().")
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelLoadError(f"The model file {path} is not a valid .keras archive (it may be "
                             f"truncated or not a model). Save it again with model.save().")
    import keras  # heavy: imported only once a model is really needed

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.load_model(path, custom_objects=custom_objects,
                                           compile=True, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError, KeyError...
        raise ModelLoadError(_explain_load_error(path, exc)) from None


def _explain_load_error(path: Path, exc: Exception) -> str:
    msg = str(exc)
    if "safe_mode" in msg or "arbitrary code" in msg or "unsafe_deserialization" in msg:
        return (f"The model {path} contains a Lambda layer (or other code) that only runs with "
                f"Keras safe mode off. Loading it would execute Python code stored in the file, "
                f"which can do anything on this machine. If you trust who made it, run nandoc "
                f"again with --unsafe.")
    missing = re.search(r"Could not (?:locate|deserialize) (?:function|class|object) "
                        r"'?([\w.]+)'?", msg)
    if missing or "custom_objects" in msg or "Unknown" in msg:
        name = missing.group(1) if missing else _unknown_name(msg)
        return (f"The model {path} uses a custom object '{name}' that nandoc was not given. "
                f"Add the Python file that defines it to [model] custom_objects in nandoc.toml, "
                f"or pass --custom-objects FILE.py.")
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
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
        return info if builtin else _with_source(info, fn if fn is not loss else type(loss))
    fn = loss
    builtin = getattr(fn, "__module__", "").startswith("keras")
    info = LossInfo(getattr(fn, "__name__", type(fn).__name__), fn, builtin, False, output)
    return info if builtin else _with_source(info, fn)


def _with_source(info: LossInfo, obj: Any) -> LossInfo:
    try:
        file = inspect.getsourcefile(obj)
        line = inspect.getsourcelines(obj)[1]
    except (TypeError, OSError):
        return info
    return LossInfo(info.name, info.fn, info.builtin, info.from_logits, info.output,
                    file=file, line=line)
