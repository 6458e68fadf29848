"""The user's files a command reads, by role: for refusing an output that would replace one of
them (before any work starts), and for naming the file whose code asked to exit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nandoc.config import Config


def source_file(cfg: Config) -> Path | None:
    """The Python file of `[data] source = "file.py:function"`, as nandoc will import it."""
    if not cfg.data_function:
        return None
    file, sep, _ = str(cfg.data_function).strip().rpartition(":")
    if not sep or not file.strip():
        return None
    path = Path(file.strip()).expanduser()
    base = cfg.source.parent if cfg.source is not None else Path.cwd()
    return path if path.is_absolute() else base / path


def input_files(cfg: Config, extra: dict[str, Path | None] | None = None) -> dict[str, Path]:
    """Role (as a message names it) -> path, for every file the run reads (`extra`: those
    named by options, such as replay's --from checkpoint)."""
    roles: dict[str, Path | None] = {
        **(extra or {}),
        "the model file": cfg.model_path,
        "the training data file": cfg.data_path,
        "the validation data file": cfg.validation_path,
        "the config file": cfg.source,
        "the [data] source file": source_file(cfg),
    }
    for i, path in enumerate(cfg.custom_objects):
        roles["the custom_objects file" + (f" #{i + 1}" if len(cfg.custom_objects) > 1
                                           else "")] = path
    return {role: path for role, path in roles.items() if path is not None}


def code_files(cfg: Config) -> dict[Path, str]:
    """The Python files whose code nandoc runs -> what they are."""
    out = {path: "the custom_objects file" for path in cfg.custom_objects}
    source = source_file(cfg)
    if source is not None:
        out[source] = "the [data] source file"
    return out


def guard_outputs(cfg: Config, extra_inputs: dict[str, Path | None] | None = None,
                  **outputs: Path | None) -> None:
    """Before any work: no output on an input, none on another, each in a writable folder.
    `outputs`: option name without dashes -> path, e.g. output=..., plot=..."""
    from nandoc.atomic import guard_outputs as guard

    guard({f"--{name}": path for name, path in outputs.items()}, input_files(cfg, extra_inputs))


def prepare(cfg: Config, roles: dict[Path, str], folders: dict[str, Path | None] | None = None,
            extra_inputs: dict[str, Path | None] | None = None, **outputs: Path | None) -> None:
    """Once the config is read: refuse bad outputs (`folders`: output folders such as
    --tensorboard, created if missing), and tell `roles` (from `output.running`) which files
    hold the user's code."""
    guard_outputs(cfg, extra_inputs, **outputs)
    for name, folder in (folders or {}).items():
        if folder is not None:
            from nandoc.watch.tensorboard import check_folder

            check_folder(f"--{name}", folder, input_files(cfg, extra_inputs))
    roles.update(code_files(cfg))
