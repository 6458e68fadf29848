"""Wall time of `nandoc check` on each bundled sample next to `python -c "import tensorflow"`,
measured in the same run (medians of N runs each, subprocesses, warm file cache).

    python bench/check_startup.py [--runs 5]

Target: each sample within 5 s of the bare TensorFlow import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = ["conv1d_timeseries", "sparse_events_loss", "where_trap_loss", "healthy"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1"}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base_cmd = [sys.executable, "-c", "import tensorflow"]
    wall(base_cmd)  # warm the file cache once
    rows = []
    # Interleave the runs so that load on the machine affects both sides alike.
    times: dict[str, list[float]] = {"import tensorflow": []}
    for _ in range(args.runs):
        times["import tensorflow"].append(wall(base_cmd))
        for s in SAMPLES:
            cmd = [sys.executable, "-m", "nandoc", "check", "--config",
                   str(REPO / "sample_configs" / s / "nandoc.toml")]
            times.setdefault(s, []).append(wall(cmd))
    base = statistics.median(times["import tensorflow"])
    print(f"{'what':<24}{'median s':>10}{'minus import':>14}")
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append((name, med))
        extra = "" if name == "import tensorflow" else f"{med - base:+.2f}"
        print(f"{name:<24}{med:>10.2f}{extra:>14}")


if __name__ == "__main__":
    main()
