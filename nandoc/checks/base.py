"""What checks receive: the loaded inputs, passed by need name (model, loss, data, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nandoc.config import Config
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.loading.table import DataScan, Table


@dataclass(frozen=True)
class ScannedFile:
    table: Table
    scan: DataScan
    role: str  # "data" or "validation"


@dataclass
class Inputs:
    """Everything a run has loaded. A need that is missing carries the reason why."""

    config: Config
    model: Any = None
    loss: list[LossInfo] = field(default_factory=list)
    data: Dataset | None = None
    scan: list[ScannedFile] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    def has(self, need: str) -> bool:
        value = getattr(self, need)
        return value is not None and value != []

    def reason(self, need: str) -> str:
        default = {
            "model": "no model was given",
            "loss": "the model was saved without a compiled loss",
            "data": "no data was given",
            "scan": "no data was given",
            "sources": "no custom_objects files were given",
        }
        return self.unavailable.get(need, default.get(need, f"{need} is not available"))

    def kwargs_for(self, needs: tuple[str, ...]) -> dict[str, Any]:
        return {n: getattr(self, n) for n in needs}
