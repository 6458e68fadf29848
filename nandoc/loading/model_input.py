"""What the model takes, matched against the data before anything is fed: the single input's
shape (rows or windows), and the names of several inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nandoc.config import Config
from nandoc.errors import DataError
from nandoc.loading.structured import Signature, check_widths, require_mapping


@dataclass(frozen=True)
class ModelInput:
    """What the model expects: (None, F) rows or (None, T, F) sequences."""

    rank: int
    timesteps: int | None
    features: int | None

    @classmethod
    def of(cls, model) -> ModelInput:
        inputs = list(getattr(model, "inputs", None) or [])
        return cls.from_shapes([tuple(t.shape) for t in inputs],
                               [str(getattr(t, "name", "?")) for t in inputs])

    @classmethod
    def from_shapes(cls, shapes: list[tuple], names: list[str]) -> ModelInput:
        if len(shapes) != 1:
            raise DataError(f"The model has {len(shapes)} inputs ({', '.join(names)}); name "
                            f"the columns of each in [data] inputs.")
        shape = shapes[0]
        if len(shape) == 2:
            return cls(2, None, shape[1])
        if len(shape) == 3:
            return cls(3, shape[1], shape[2])
        raise DataError(f"The model's input has shape {shape}; nandoc reads tabular rows "
                        f"(None, features) or windows of rows (None, timesteps, features).")


def check_model_fits(model: Any, cfg: Config) -> ModelInput | None:
    """The loaded model's single input (None for several), after matching its inputs and
    outputs to the data by name."""
    sig = Signature.of(model)
    require_mapping(len(sig.inputs), sig.input_names, cfg, "input")
    require_mapping(len(sig.outputs), sig.output_names, cfg, "output")
    if len(sig.inputs) != 1:
        check_widths(sig, cfg)
        return None
    return ModelInput.of(model)


def window_length(cfg: Config, mi: ModelInput | None, n_features: int) -> int | None:
    configured = cfg.window.length if cfg.window else None
    where = f" (config: {cfg.source})" if cfg.source else ""
    if mi is None:
        return configured
    if mi.features is not None and mi.features != n_features:
        raise DataError(
            f"The model expects {mi.features} features per row but the data gives "
            f"{n_features}{where}. Set [data] features to the {mi.features} columns the model "
            f"was trained on, or check the target column."
        )
    if mi.rank == 2:
        if cfg.window is not None:
            raise DataError(f"[data.window] is set{where}, but the model takes single rows "
                            f"(None, {mi.features}), not windows. Remove [data.window].")
        return None
    if configured is None:
        if mi.timesteps is None:
            raise DataError(f"The model takes sequences of any length (None, None, "
                            f"{mi.features}); set [data.window] length to the window you "
                            f"train with.")
        return mi.timesteps
    if mi.timesteps is not None and configured != mi.timesteps:
        raise DataError(f"[data.window] length is {configured}{where}, but the model's input "
                        f"takes windows of {mi.timesteps} rows. Make them equal.")
    return configured


