"""Live progress for `nandoc replay`: a rich bar with the loss and gradient norm, on stderr.

Only on an interactive terminal and never in machine formats; the replay loop calls `update`
each step, and the bar redraws a few times a second whatever the step rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else "inf"
    return f"{x:.3g}"


class ReplayProgress:
    def __init__(self, console: Console, epochs: int):
        self.epochs = epochs
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
            TextColumn("loss {task.fields[loss]}  |g| {task.fields[gnorm]}"),
            TimeElapsedColumn(),
            console=console, transient=True, refresh_per_second=5)
        self.task = self.progress.add_task("replay", total=1, epoch=1, epochs=epochs, loss="-",
                                           gnorm="-")

    def update(self, epoch: int, step: int, steps_per_epoch: int, stats) -> None:
        self.progress.update(self.task, total=steps_per_epoch, completed=step, epoch=epoch,
                             loss=_fmt(stats.loss), gnorm=_fmt(stats.grad_norm))


@contextmanager
def replay_progress(enabled: bool, epochs: int) -> Iterator[ReplayProgress | None]:
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    bar = ReplayProgress(console, epochs)
    with bar.progress:
        yield bar
