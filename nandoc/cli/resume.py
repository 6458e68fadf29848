"""replay's --from/--epoch/--step, checked before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nandoc.errors import ConfigError


def resume_from(checkpoint: Path | None, epoch: int | None, step: int | None) -> Any:
    """replay's --from/--epoch/--step as a `Resume` (None without --from); checked before any
    work, as one-paragraph errors."""
    if checkpoint is None:
        if epoch is not None or step is not None:
            raise ConfigError("--epoch and --step say where a --from checkpoint starts; give "
                              "--from CHECKPOINT with them, or leave them out to replay from "
                              "the model file's weights at epoch 1.")
        return None
    from nandoc.loading.checkpoint import resolve

    return resolve(Path(checkpoint), epoch, step)


def last_epoch(resume: Any, epochs: int | None, configured: int) -> int:
    """The last epoch the replay may reach, in the original run's numbering (the progress
    bar's "epoch E/N")."""
    if resume is None:
        return epochs or configured
    return resume.epoch - 1 + epochs if epochs else max(configured, resume.epoch)
