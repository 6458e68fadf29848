"""The user's files a command reads, by role: for refusing an output that would replace one of
them (before any work starts), and for naming the file whose code asked to exit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nandoc.config import Config


def code_files(cfg: Config) -> dict[Path, str]:
    """The Python files whose code nandoc runs -> what they are."""
    out = {path: "the custom_objects file" for path in cfg.custom_objects}
    source = cfg.source_file()
    if source is not None:
        out[source] = "the [data] source file"
    return out


def guard_outputs(cfg: Config, extra_inputs: dict[str, Path | None] | None = None,
                  **outputs: Path | None) -> None:
    """Before any work: no output on an input, none on another, each in a writable folder.
    `outputs`: option name without dashes -> path, e.g. output=..., plot=..."""
    from nandoc.atomic import guard_outputs as guard

    guard({f"--{name}": path for name, path in outputs.items()}, cfg.input_files(extra_inputs))


def prepare(cfg: Config, roles: dict[Path, str], folders: dict[str, Path | None] | None = None,
            extra_inputs: dict[str, Path | None] | None = None, **outputs: Path | None) -> None:
    """Once the config is read: refuse bad outputs (`folders`: output folders such as
    --tensorboard, created if missing), and tell `roles` (from `output.running`) which files
    hold the user's code."""
    guard_outputs(cfg, extra_inputs, **outputs)
    for name, folder in (folders or {}).items():
        if folder is not None:
            from nandoc.watch.tensorboard import check_folder

            check_folder(f"--{name}", folder, cfg.input_files(extra_inputs))
    roles.update(code_files(cfg))
