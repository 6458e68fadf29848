"""`nandoc check` on each bundled family example (sample_configs/families/), timed against
`python -c "import tensorflow"` measured in the same run.

    python bench/families.py            # prints one row per family and the worst difference
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "sample_configs" / "families"


def _timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done


def main() -> None:
    imports = [_timed([sys.executable, "-c", "import tensorflow"], ROOT)[0] for _ in range(2)]
    base = min(imports)
    print(f"python -c 'import tensorflow': {base:.2f} s")
    print(f"{'family':<14}{'exit':>5}  {'rank-1 cause':<26}{'check s':>8}{'- import':>10}")
    worst = 0.0
    for folder in sorted(p for p in ROOT.iterdir() if (p / "nandoc.toml").is_file()):
        took, done = _timed([sys.executable, "-m", "nandoc", "check", "--config", "nandoc.toml",
                             "--format", "json"], folder)
        report = json.loads(done.stdout) if done.stdout.strip() else {}
        first = (report.get("findings") or [{}])[0].get("cause", "-")
        worst = max(worst, took - base)
        print(f"{folder.name:<14}{done.returncode:>5}  {first:<26}{took:>8.2f}"
              f"{took - base:>+10.2f}")
    print(f"worst: {worst:+.2f} s over the import (target: within 5 s)")


if __name__ == "__main__":
    main()
