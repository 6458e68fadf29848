"""What checks receive: the loaded inputs and the shared measurements, passed by need name.

A check declares what it needs (`model`, `data`, `passes`, ...); the runner passes exactly
those. Loaded inputs are plain attributes. Shared measurements (the layer passes on the selected
batches, the static read of the custom-objects source) are computed on first use and kept for
the rest of the run, so every check that declares one reads the same values, and one that
failed is reported, with the same message, by every check that needed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nandoc.config import Config
from nandoc.core.records import FirstNonfinite, StepLog
from nandoc.loading.custom_objects import SourceFile
from nandoc.loading.dataset import Dataset
from nandoc.loading.model import LossInfo
from nandoc.loading.table import ScannedFile


# Shared measurements: need name -> (the loaded inputs it is computed from, how).
def _passes(inputs: Inputs) -> Any:
    from nandoc.analysis.passes import layer_passes

    return layer_passes(inputs.model, inputs.loss or None, inputs.data, inputs.config)


def _suspects(inputs: Inputs) -> Any:
    from nandoc.analysis.source import static_suspects

    return static_suspects(inputs.sources)


MEASUREMENTS = {
    "passes": (("model", "data"), _passes),
    "suspects": (("sources",), _suspects),
}


@dataclass
class Inputs:
    """Everything a run has: what was loaded, what training showed, and the shared
    measurements, computed lazily. A need that is missing carries the reason why.

    `steplog` and `first_nonfinite` are observations: filled in by the drivers that train
    (replay, check's burst, the callback), absent for a static run.
    """

    config: Config
    model: Any = None
    loss: list[LossInfo] = field(default_factory=list)
    data: Dataset | None = None
    scan: list[ScannedFile] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    steplog: StepLog | None = None
    first_nonfinite: FirstNonfinite | None = None
    # Services a driver offers to the checks, e.g. "rerun": re-train the first steps with a
    # change (replay has one; a static run does not).
    rerun: Any = None
    unavailable: dict[str, str] = field(default_factory=dict)
    _measured: dict[str, Any] = field(default_factory=dict, repr=False)

    def has(self, need: str) -> bool:
        if need in MEASUREMENTS:
            return all(self.has(n) for n in MEASUREMENTS[need][0])
        value = getattr(self, need)
        return value is not None and value != []

    def reason(self, need: str) -> str:
        if need in MEASUREMENTS:
            missing = next(n for n in MEASUREMENTS[need][0] if not self.has(n))
            return self.reason(missing)
        default = {
            "model": "no model was given",
            "loss": "the model was saved without a compiled loss",
            "data": "no data was given",
            "scan": "no data was given",
            "sources": "no custom_objects files were given",
            "steplog": "no training steps were run",
            "first_nonfinite": "no non-finite value was observed",
            "rerun": "this run cannot re-train the model",
        }
        return self.unavailable.get(need, default.get(need, f"{need} is not available"))

    def get(self, need: str) -> Any:
        """The input or measurement `need`; a measurement is computed once, and a failure to
        compute it is kept and raised again to every check that asks."""
        if need not in MEASUREMENTS:
            return getattr(self, need)
        if need not in self._measured:
            try:
                self._measured[need] = MEASUREMENTS[need][1](self)
            except Exception as exc:  # every check that needs it reports the same failure
                self._measured[need] = exc
        value = self._measured[need]
        if isinstance(value, Exception):
            raise value
        return value

    def optional(self, need: str, default: Any = None) -> Any:
        """`need` when it is there and could be computed, else `default`."""
        if not self.has(need):
            return default
        try:
            return self.get(need)
        except Exception:  # the checks that need it report the failure
            return default

    def kwargs_for(self, needs: tuple[str, ...]) -> dict[str, Any]:
        return {n: self.get(n) for n in needs}
