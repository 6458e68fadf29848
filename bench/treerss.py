"""Run a command and measure its wall time and the peak memory of its whole process tree.

`nandoc check` scans big data in a child process while TensorFlow imports in the parent, so the
command's own `ru_maxrss` would leave the child out. The tree's resident memory is summed from
/proc every INTERVAL seconds (the command and every process below it); the reported peak is the
larger of that sampled sum and the command's own `ru_maxrss` (exact, for the command alone).
The list of processes is refreshed every FIND_INTERVAL seconds only: finding children means
reading a file per thread, and TensorFlow runs dozens of threads (walking them every 20 ms cost
the measured command ~1 s in 11). A child that starts and ends between two refreshes is missed.
Linux only (/proc).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

INTERVAL = 0.02
FIND_INTERVAL = 0.2
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants, now."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += _children(p)
    return found


def run(cmd: list[str], *, env: dict | None = None, cwd: Path | str | None = None,
        capture: bool = False) -> tuple[float, float, int, str]:
    """(wall seconds, peak MiB of the process tree, exit code, stdout if `capture`)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, text=True, stderr=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        pids, found = [proc.pid], time.perf_counter()
        while not done.is_set():
            if time.perf_counter() - found >= FIND_INTERVAL:
                pids, found = tree(proc.pid), time.perf_counter()
            peak[0] = max(peak[0], sum(_rss(p) for p in pids))
            done.wait(INTERVAL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read() if capture and proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    own = usage.ru_maxrss * 1024
    return time.perf_counter() - start, max(peak[0], own) / 2**20, proc.returncode, out
