"""The check registry: each check declares its id, the inputs it needs and the causes it emits."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nandoc.core.finding import Finding

# Inputs a check may ask for. The runner passes only these, and records "not applicable"
# with the reason when one is missing.
KNOWN_NEEDS = frozenset({
    "model", "loss", "data", "scan", "sources", "config",  # loaded from files or handed in
    "passes", "suspects",  # shared measurements, computed once per run when first asked for
    "steplog", "first_nonfinite", "rerun",  # what training showed, from the drivers that train
})


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    needs: tuple[str, ...]
    causes: tuple[str, ...]
    func: Callable[..., Iterable[Finding]]
    wants: tuple[str, ...] = ()  # optional inputs: passed when loaded, else None
    module: str = ""  # the module that defines it: nandoc.checks.<family>.<name>
    # Candidate fixes for the check's findings, verified by replay by re-running the failing
    # steps: a function (finding) -> list of nandoc.engine.fixes.Candidate.
    fixes: Callable[[Finding], list[Any]] | None = None


_REGISTRY: dict[str, CheckSpec] = {}


def check(*, id: str, needs: tuple[str, ...], causes: tuple[str, ...],
          wants: tuple[str, ...] = (), fixes: Callable[[Finding], list[Any]] | None = None):
    """Register a check. Its title is the first line of the function's docstring.

    `needs` must all be loaded for the check to run ("not applicable" otherwise); `wants` are
    passed when loaded and as None when not, for checks that sharpen their verdict with them.
    """

    unknown = (set(needs) | set(wants)) - KNOWN_NEEDS
    if unknown:
        raise ValueError(f"check {id!r} needs unknown inputs {sorted(unknown)}")

    def register(func: Callable[..., Iterable[Finding]]) -> Callable[..., Iterable[Finding]]:
        if id in _REGISTRY:
            raise ValueError(f"check id {id!r} registered twice")
        title = (func.__doc__ or "").strip().splitlines()[0] if func.__doc__ else id
        _REGISTRY[id] = CheckSpec(id=id, title=title, needs=needs, causes=causes, func=func,
                                  wants=wants, module=func.__module__, fixes=fixes)
        return func

    return register


def all_checks() -> list[CheckSpec]:
    return [spec for _, spec in sorted(_REGISTRY.items())]


def checks_emitting(cause: str) -> list[CheckSpec]:
    """The registered checks that can emit `cause` (load the check modules first)."""
    return [spec for spec in all_checks() if cause in spec.causes]
