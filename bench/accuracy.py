"""How often nandoc names the right root cause on the NaN zoo (tests/zoo/cases.py).

    python bench/accuracy.py                 # check + replay on every case, then the table
    python bench/accuracy.py --verify        # also train each case with plain model.fit
    python bench/accuracy.py --only NAME...  # a few cases

Builds the zoo into a temporary folder, runs `check` (static checks + 50-step burst) and
`replay` (the configured epochs, watched) on every case, and prints per case the rank-1 cause
and the exit code of each command, then the totals: rank-1 right, top-3 right, exit code
right, false alarms on the healthy controls.

--verify trains each built case with plain `model.fit` (the toml's batch size and epochs,
shuffle=False), independently of nandoc, and prints where the loss or the weights first became
non-finite (or the exception training raised): the ground truth each case's `why` records.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import tempfile
import time
import tomllib
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tests.zoo.cases import BROKEN, CASES  # noqa: E402

COMMANDS = ("check", "replay")


# --------------------------------------------------------------------------------------------
# plain model.fit, from first principles (no nandoc code)
# --------------------------------------------------------------------------------------------

def _custom_objects(folder: Path, names: list[str]) -> dict:
    objects: dict = {}
    for rel in names:
        spec = importlib.util.spec_from_file_location("losses", folder / rel)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        objects.update({k: v for k, v in vars(module).items()
                        if not k.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                        and getattr(v, "__module__", "") == "losses"})
    return objects


def _windows(x: np.ndarray, y: np.ndarray, window: int | None):
    if not window:
        return x, y
    idx = np.arange(len(x) - window + 1)
    return np.stack([x[i:i + window] for i in idx]), y[idx + window - 1]


def plain_fit(toml: Path, validation: bool = False) -> str:
    """Train the case as its user would (with `validation`, its validation rows too); say
    where it first went non-finite."""
    import keras

    folder = toml.parent
    cfg = tomllib.loads(toml.read_text())
    model = keras.saving.load_model(folder / cfg["model"]["path"],
                                    custom_objects=_custom_objects(
                                        folder, cfg["model"].get("custom_objects", [])))
    df = pd.read_csv(folder / cfg["data"]["path"])
    target = cfg["data"]["target"]
    targets = [target] if isinstance(target, str) else list(target)
    df = df.apply(pd.to_numeric, errors="coerce")
    x = df.drop(columns=targets).to_numpy("float32")
    y = df[targets].to_numpy("float32")
    split = cfg["data"].get("validation_split", 0.0)
    n_train = len(df) - int(round(len(df) * split))
    window = cfg["data"].get("window", {}).get("length")
    xt, yt = _windows(x[:n_train], y[:n_train], window)
    val = None
    if validation and n_train < len(df):
        val = _windows(x[n_train:], y[n_train:], window)
    train = cfg["train"]
    seen: dict = {}

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            loss = float(logs.get("loss", 0.0)) if logs else 0.0
            w_ok = all(np.all(np.isfinite(np.asarray(v))) for v in model.weights)
            if not np.isfinite(loss) or not w_ok:
                what = ([f"loss {loss}"] if not np.isfinite(loss) else []) + (
                    [] if w_ok else ["weights non-finite"])
                seen.setdefault("at", f"epoch {self.epoch} step {batch + 1}: {', '.join(what)}")
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            vl = (logs or {}).get("val_loss")
            if vl is not None and not np.isfinite(float(vl)):
                seen.setdefault("at", f"epoch {epoch + 1} end: val_loss {float(vl)}")
                self.model.stop_training = True

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hist = model.fit(xt, yt, batch_size=train["batch_size"], epochs=train["epochs"],
                             shuffle=False, verbose=0, callbacks=[Watch()],
                             validation_data=val)
    except Exception as exc:  # noqa: BLE001
        return f"raised {type(exc).__name__}: {' '.join(str(exc).split())[:90]}"
    if "at" in seen:
        return "NON-FINITE at " + seen["at"]
    losses = hist.history.get("loss", [])
    vals = hist.history.get("val_loss", [])
    tail = f", val_loss {vals[-1]:.4g}" if vals else ""
    return f"finite: {train['epochs']} epochs, loss {losses[0]:.4g} -> {losses[-1]:.4g}{tail}"


# --------------------------------------------------------------------------------------------
# nandoc
# --------------------------------------------------------------------------------------------

def run_nandoc(command: str, toml: Path) -> dict:
    from nandoc.config import load_config
    from nandoc.core.finding import FailOn
    from nandoc.drivers.check import check
    from nandoc.drivers.replay import replay

    started = time.perf_counter()
    try:
        cfg = load_config(toml)
        report = check(cfg, steps=50) if command == "check" else replay(cfg)
        causes = [f.cause for f in report.findings]
        errors = [f.cause for f in report.findings if f.severity.value == "error"]
        return {"causes": causes, "errors": errors, "exit": report.exit_code(FailOn.ERROR),
                "rank1": causes[0] if causes else "-", "seconds": time.perf_counter() - started}
    except Exception as exc:  # noqa: BLE001
        return {"causes": [], "errors": [], "exit": None,
                "rank1": f"CRASH {type(exc).__name__}: {str(exc)[:60]}",
                "trace": traceback.format_exc(), "seconds": time.perf_counter() - started}


def judge(case, command: str, res: dict) -> dict:
    if case.kind == BROKEN:
        want = case.expected(command)
        return {"rank1": res["rank1"] in want, "top3": any(c in want for c in res["causes"][:3]),
                "exit": res["exit"] == 1, "false_alarm": False}
    clean = res["exit"] == 0 and not res["errors"]
    return {"rank1": clean, "top3": clean, "exit": res["exit"] == 0, "false_alarm": not clean}


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
    with tempfile.TemporaryDirectory(prefix="nandoc-zoo-") as tmp:
        for c in cases:
            toml = c.build(Path(tmp) / c.name)
            row = {"case": c, "res": {}}
            if args.verify:
                row["fit"] = plain_fit(toml)
                print(f"[fit] {c.name:34s} {row['fit']}", flush=True)
            if not args.no_nandoc:
                for cmd in COMMANDS:
                    row["res"][cmd] = res = run_nandoc(cmd, toml)
                    row.setdefault("ok", {})[cmd] = judge(c, cmd, res)
                    if args.trace and "trace" in res:
                        print(res["trace"], file=sys.stderr)
            rows.append(row)
    if args.no_nandoc:
        return 0
    elapsed = time.perf_counter() - started

    print_table(rows, cases)
    print(f"total {elapsed:.0f} s")
    return 0


def print_table(rows: list[dict], cases: list) -> None:
    """Per case the rank-1 cause and exit code of each command, then the totals."""
    w = max(len(c.name) for c in cases)
    print()
    print(f"{'case':{w}s}  {'class':12s}  {'check rank-1':28s} ex  {'replay rank-1':28s} ex  "
          f"expected")
    print("-" * (w + 110))
    for row in rows:
        c = row["case"]
        cells = []
        for cmd in COMMANDS:
            res, ok = row["res"][cmd], row["ok"][cmd]
            mark = "✓" if ok["rank1"] and ok["exit"] else "✗"
            cells.append(f"{mark} {res['rank1'][:26]:26s} {res['exit']!s:>2s}")
        exp = "healthy: exit 0, no error" if c.kind != BROKEN else "|".join(c.expect) + (
            f" (check: {'|'.join(c.expect_check)})" if c.expect_check else "")
        print(f"{c.name:{w}s}  {c.klass:12s}  {cells[0]}  {cells[1]}  {exp}")
    print()
    for cmd in COMMANDS:
        broken = [r for r in rows if r["case"].kind == BROKEN]
        healthy = [r for r in rows if r["case"].kind != BROKEN]

        def pct(k: str, rs: list, cmd: str = cmd) -> float:
            return 100.0 * sum(r["ok"][cmd][k] for r in rs) / max(len(rs), 1)

        secs = sum(r["res"][cmd]["seconds"] for r in rows)
        print(f"{cmd:6s}: rank-1 right {pct('rank1', broken):5.1f}% of {len(broken)} broken | "
              f"top-3 right {pct('top3', broken):5.1f}% | exit code right "
              f"{pct('exit', rows):5.1f}% of {len(rows)} | false alarms on healthy "
              f"{sum(r['ok'][cmd]['false_alarm'] for r in healthy)}/{len(healthy)} | "
              f"{secs:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
