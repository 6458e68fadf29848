"""Import the custom_objects Python files the user named. This runs their code, which is why
nandoc only does it for files named in [model] custom_objects or --custom-objects."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nandoc.errors import CustomObjectsError, NandocError
from nandoc.paths import require_file


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


def _keras2_hint(exc: BaseException) -> str:
    if isinstance(exc, AttributeError) and "keras.backend" in str(exc) or "backend" in str(exc):
        return (" Keras 3 removed the Keras 2 backend math functions (K.log, K.clip, ...): "
                "use keras.ops.log, keras.ops.clip and friends.")
    return ""


def run_user_file(path: Path, name: str, error: type[NandocError], role: str, *,
                  not_python: str, script_fix: str,
                  hint: Callable[[BaseException], str] = lambda exc: "",
                  fix: str = "") -> ModuleType:
    """Import the user's Python file `path` as module `name` (left in sys.modules: a generator
    in it may look up its globals later), writing no __pycache__ next to it (nandoc writes
    nothing outside --output). A sys.exit() or an exception in the file is `error`, naming the
    file's line; `role` is how messages name the file ("the data source file")."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise error(not_python)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise error(
            f"Importing {role} {path} called sys.exit({exc.code!r}): the file runs a script "
            f"when imported. Put the script part under `if __name__ == '__main__':`"
            f"{', ' + script_fix if script_fix else '.'}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise error(
            f"Importing {role} {path} failed at line {_user_line(exc, path)}: "
            f"{type(exc).__name__}: {_one_line(exc)}.{hint(exc)}{' ' + fix if fix else ''}"
        ) from None
    finally:
        sys.dont_write_bytecode = saved
    return module


def import_source(path: Path) -> SourceFile:
    require_file(path, "custom_objects file", CustomObjectsError,
                 fix="Fix [model] custom_objects in nandoc.toml or the --custom-objects option.")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CustomObjectsError(f"The custom_objects file {path} could not be read "
                                 f"({exc.strerror or exc}). Check its permissions.") from None
    name = f"nandoc_user_{abs(hash(str(path.resolve())))}"
    module = run_user_file(
        path, name, CustomObjectsError, "the custom_objects file",
        not_python=f"The custom_objects file {path} is not a Python file; give the .py file "
                   f"that defines the custom losses and layers.",
        script_fix="or move the custom objects to a file of their own.", hint=_keras2_hint)
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
