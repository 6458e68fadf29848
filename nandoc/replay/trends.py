"""Causes read from the per-step log: gradients that explode, a loss that diverges at once."""

from __future__ import annotations

import numpy as np

from nandoc.core.evidence import num
from nandoc.core.finding import Finding, Location, Severity
from nandoc.replay.loop import ReplayLog

BLOCKS = "▁▂▃▄▅▆▇█"
GROWTH = 1e3  # three orders of magnitude


def sparkline(values, width: int = 40, log: bool = True) -> str:
    v = np.asarray([x for x in values], dtype=np.float64)
    if v.size == 0:
        return ""
    if v.size > width:  # keep the last point (the one before the NaN) in view
        idx = np.linspace(0, v.size - 1, width).round().astype(int)
        v = v[idx]
    finite = np.isfinite(v) & ((v > 0) if log else True)
    if not finite.any():
        return "✖" * len(v)
    t = np.where(finite, np.log10(np.where(finite, v, 1.0)) if log else v, np.nan)
    lo, hi = np.nanmin(t), np.nanmax(t)
    span = (hi - lo) or 1.0
    return "".join("✖" if not ok else BLOCKS[int((x - lo) / span * (len(BLOCKS) - 1))]
                   for x, ok in zip(t, finite))


def exploding_gradients(log: ReplayLog, optimizer_name: str) -> Finding | None:
    g = np.asarray(log.grad_norm, dtype=np.float64)
    finite = g[np.isfinite(g)]
    if finite.size < 3:
        return None
    head = np.median(finite[: max(1, min(10, finite.size // 4))])
    peak_i = int(np.nanargmax(np.where(np.isfinite(g), g, -np.inf)))
    peak = float(g[peak_i])
    if head <= 0 or peak / head < GROWTH:
        return None
    nan = log.failure is not None
    return Finding(
        cause="exploding-gradients",
        severity=Severity.ERROR if nan else Severity.WARNING,
        confidence=0.85 if nan else 0.6,
        title=f"gradient norm grew ×{num(peak / head)} before "
              + ("the NaN" if nan else "the end of the run"),
        evidence=(f"global gradient norm {num(float(head))} over the first steps, "
                  f"{num(peak)} at epoch {log.epoch[peak_i]} step {log.step[peak_i]}"
                  + (f", then non-finite at epoch {log.failure.epoch} step "
                     f"{log.failure.step}" if nan else "")
                  + f". log-scale trace: {sparkline(g)}"),
        location=Location(kind="optimizer", name=optimizer_name, epoch=log.epoch[peak_i],
                          step=log.step[peak_i]),
        fix="Clip gradients (clipnorm=1.0 on the optimizer) and lower the learning rate; look "
            "upstream for the op that grows without bound.",
        measured={"head": float(head), "peak": peak, "growth": peak / head,
                  "peak_step": peak_i + 1},
    )


def diverges_early(log: ReplayLog, window: int = 20) -> tuple[bool, str]:
    """The loss grows over the first steps: most steps up, and at least doubled."""
    loss = np.asarray(log.loss[:window], dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    if loss.size < 4:
        return False, ""
    ups = float(np.mean(np.diff(loss) > 0))
    grew = loss[-1] / max(abs(loss[0]), 1e-12)
    ok = ups >= 0.6 and grew >= 2.0
    return ok, (f"the loss rose from {num(float(loss[0]))} to {num(float(loss[-1]))} over the "
                f"first {loss.size} steps ({ups:.0%} of steps up): {sparkline(loss, log=False)}")
