"""How nandoc does on the held-out NaN set (tests/zoo/holdout.py), cases it was never tuned on.

    python bench/holdout.py                      # check + replay on every case, then the table
    python bench/holdout.py --verify             # also train each case with plain model.fit
    python bench/holdout.py --verify --no-nandoc # only the ground truth
    python bench/holdout.py --only NAME...       # a few cases

Same table and totals as bench/accuracy.py (whose nandoc runner and judge it reuses): per case
the rank-1 cause and exit code of `check` and `replay`, then rank-1 right, top-3 right, exit code
right (broken -> 1, healthy -> 0) and false alarms on the healthy controls.

--verify trains each built case with plain `model.fit` (the toml's batch size and epochs,
shuffle=False, the validation rows passed as validation_data), independently of nandoc, and
prints where the loss, the validation loss or the weights first became non-finite (or the
exception training raised).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))



def _load_accuracy():
    spec = importlib.util.spec_from_file_location("_bench_accuracy",
                                                  Path(__file__).with_name("accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_acc = _load_accuracy()
COMMANDS, judge, run_nandoc = _acc.COMMANDS, _acc.judge, _acc.run_nandoc

from tests.zoo.holdout import CASES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verify", action="store_true", help="also train each case with model.fit")
    ap.add_argument("--no-nandoc", action="store_true", help="only build (and --verify)")
    ap.add_argument("--only", nargs="*", help="case names")
    ap.add_argument("--trace", action="store_true", help="print tracebacks of crashes")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only]
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nandoc-holdout-") as tmp:
        for c in cases:
            toml = c.build(Path(tmp) / c.name)
            row = {"case": c, "res": {}, "ok": {}}
            if args.verify:
                row["fit"] = _acc.plain_fit(toml, validation=True)
                print(f"[fit] {c.kind:7s} {c.name:36s} {row['fit']}", flush=True)
            if not args.no_nandoc:
                for cmd in COMMANDS:
                    row["res"][cmd] = res = run_nandoc(cmd, toml)
                    row["ok"][cmd] = judge(c, cmd, res)
                    if args.trace and "trace" in res:
                        print(res["trace"], file=sys.stderr)
            rows.append(row)
    if args.no_nandoc:
        return 0
    elapsed = time.perf_counter() - started

    _acc.print_table(rows, cases)
    print(f"total {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
