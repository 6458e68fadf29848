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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _user_line(exc: BaseException, path: Path) -> int | str:
    """The line of the user's file where the import failed (not a library's line)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == path.resolve()]
    return frames[-1].lineno if frames and frames[-1].lineno else "?"


def import_source(path: Path) -> SourceFile:
    if not path.is_file():
        raise CustomObjectsError(
            f"The custom_objects file {path} does not exist. Fix [model] custom_objects in "
            f"nandoc.toml or the --custom-objects option."
        )
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CustomObjectsError(f"The custom_objects file {path} could not be read "
                                 f"({exc.strerror or exc}). Check its permissions.") from None
    name = f"nandoc_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CustomObjectsError(f"The custom_objects file {path} is not a Python file; give "
                                 f"the .py file that defines the custom losses and layers.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Importing would leave a __pycache__ folder next to the user's file: nandoc writes nothing
    # outside --output, so bytecode is not cached.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise CustomObjectsError(
            f"Importing the custom_objects file {path} called sys.exit({exc.code!r}): the file "
            f"runs a script when imported. Put the script part under "
            f"`if __name__ == '__main__':`, or move the custom objects to a file of their own."
        ) from None
    except Exception as exc:
        sys.modules.pop(name, None)
        line = _user_line(exc, path)
        hint = ""
        if isinstance(exc, AttributeError) and "keras.backend" in str(exc) or "backend" in str(exc):
            hint = (" Keras 3 removed the Keras 2 backend math functions (K.log, K.clip, ...): "
                    "use keras.ops.log, keras.ops.clip and friends.")
        raise CustomObjectsError(
            f"Importing the custom_objects file {path} failed at line {line}: "
            f"{type(exc).__name__}: {_one_line(exc)}.{hint}"
        ) from None
    finally:
        sys.dont_write_bytecode = saved
    objects = {
        k: v for k, v in vars(module).items()
        if not k.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
        and getattr(v, "__module__", None) == name
    }
    return SourceFile(path=path, text=text, objects=objects)


def display_path(path: str, sources: list[SourceFile]) -> str:
    """The file as the user named it in the config, when it is one of theirs."""
    resolved = Path(path).resolve()
    return next((str(s.path) for s in sources if s.path.resolve() == resolved), path)
