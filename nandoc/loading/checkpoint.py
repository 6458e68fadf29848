"""`replay --from CHECKPOINT --epoch E [--step S]`: what the checkpoint is (a full model file,
with weights and optimizer state, or a weights-only `*.weights.h5`), where in the original run
it stands, and the sidecar the NanDoctor callback writes next to the checkpoint it saves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nandoc.errors import ConfigError, ModelLoadError

SIDECAR_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".weights.h5"


@dataclass(frozen=True)
class Resume:
    """Where a replay starts: the checkpoint file, the original run's epoch (from 1) and the
    step within it (from 1; the checkpoint holds the state after step - 1)."""

    path: Path
    epoch: int
    step: int = 1

    @property
    def weights_only(self) -> bool:
        return self.path.name.endswith(WEIGHTS_SUFFIX)

    @property
    def skip(self) -> int:
        """Steps of the first epoch that the checkpoint already holds."""
        return self.step - 1

    def global_offset(self, steps_per_epoch: int) -> int:
        """Steps of the original run before the first replayed one."""
        return (self.epoch - 1) * steps_per_epoch + self.skip


def sidecar(path: Path) -> Path:
    """`last_finite.keras` -> `last_finite.keras.json`."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, epoch: int, step: int, **extra: Any) -> Path:
    """The epoch and step a checkpoint is to be replayed from, next to it."""
    out = sidecar(path)
    info = {"nandoc_checkpoint": path.name, "epoch": int(epoch), "step": int(step),
            "replay": f"nandoc replay --from {path.name} --epoch {int(epoch)} --step {int(step)}",
            **extra}
    out.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def resolve(path: Path, epoch: int | None, step: int | None) -> Resume:
    """Check the `--from` file and its epoch/step (the sidecar fills in what is not given)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(
            f"The checkpoint {path} given to --from does not exist or is not a file. Give a "
            f"model saved with model.save('x.keras') (weights and optimizer state) or weights "
            f"saved with model.save_weights('x.weights.h5').")
    if not (path.suffix == ".keras" or path.name.endswith(WEIGHTS_SUFFIX)
            or path.suffix == ".h5"):
        raise ModelLoadError(
            f"The checkpoint {path} given to --from is neither a .keras model file nor a "
            f".weights.h5 weights file. Save one with model.save('x.keras') or "
            f"model.save_weights('x.weights.h5'), or pass the checkpoint the NanDoctor "
            f"callback wrote (checkpoint_path=...).")
    side = _read_sidecar(path)
    if epoch is None:
        epoch = side.get("epoch")
        if step is None:
            step = side.get("step")
    if epoch is None:
        raise ConfigError(
            f"--from {path} needs --epoch E: the epoch (from 1, as Keras prints it) of the "
            f"original run that the checkpoint starts, e.g. the epoch where the loss turned "
            f"NaN when the checkpoint was saved at the end of the one before.")
    if int(epoch) < 1:
        raise ConfigError(f"--epoch {epoch} is not an epoch: epochs count from 1, as Keras "
                          f"prints them. Give the epoch of the original run that {path} "
                          f"starts.")
    if step is not None and int(step) < 1:
        raise ConfigError(f"--step {step} is not a step: steps count from 1 within the epoch. "
                          f"Give the step of epoch {epoch} that {path} is the state before.")
    return Resume(path, int(epoch), int(step) if step is not None else 1)


def check_step(resume: Resume, steps_per_epoch: int) -> None:
    """Refuse a --step beyond the epoch, once the data's batch count is known."""
    if resume.step > steps_per_epoch:
        raise ConfigError(
            f"--step {resume.step} is beyond epoch {resume.epoch}: with this data and batch "
            f"size an epoch has {steps_per_epoch} steps. A checkpoint taken at the end of "
            f"epoch {resume.epoch} is replayed with --epoch {resume.epoch + 1} --step 1.")


def load_weights(model: Any, resume: Resume, model_path: Path | None) -> None:
    """Put a weights-only checkpoint into the model loaded from [model] path."""
    try:
        model.load_weights(str(resume.path))
    except Exception as exc:  # Keras raises ValueError/KeyError/OSError for a mismatch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"The weights in {resume.path} do not fit the model {model_path} ({first}). Give "
            f"the weights saved from this same architecture, or the full model file saved "
            f"with model.save('x.keras') as --from (the [model] path is then not needed)."
        ) from None


def _read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
