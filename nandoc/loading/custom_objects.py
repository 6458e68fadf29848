"""Import the custom_objects Python files the user named. This runs their code, which is why
nandoc only does it for files named in [model] custom_objects or --custom-objects."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoc.errors import CustomObjectsError


@dataclass(frozen=True)
class SourceFile:
    """A custom-objects file: its text for the static checks, its objects for Keras."""

    path: Path
    text: str
    objects: dict[str, Any]


def import_source(path: Path) -> SourceFile:
    if not path.is_file():
        raise CustomObjectsError(
            f"The custom_objects file {path} does not exist. Fix [model] custom_objects in "
            f"nandoc.toml or the --custom-objects option."
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    name = f"nandoc_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CustomObjectsError(f"The custom_objects file {path} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        hint = ""
        if isinstance(exc, AttributeError) and "keras.backend" in str(exc) or "backend" in str(exc):
            hint = (" Keras 3 removed the Keras 2 backend math functions (K.log, K.clip, ...): "
                    "use keras.ops.log, keras.ops.clip and friends.")
        raise CustomObjectsError(
            f"Importing the custom_objects file {path} failed at line {frame.lineno}: "
            f"{type(exc).__name__}: {exc}.{hint}"
        ) from None
    objects = {
        k: v for k, v in vars(module).items()
        if not k.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
        and getattr(v, "__module__", None) == name
    }
    return SourceFile(path=path, text=text, objects=objects)
