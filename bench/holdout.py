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
import tomllib
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _load_accuracy():
    spec = importlib.util.spec_from_file_location("_bench_accuracy",
                                                  Path(__file__).with_name("accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_acc = _load_accuracy()
COMMANDS, judge, run_nandoc, _custom_objects = (_acc.COMMANDS, _acc.judge, _acc.run_nandoc,
                                                _acc._custom_objects)

from tests.zoo.holdout import CASES  # noqa: E402


def _windows(x: np.ndarray, y: np.ndarray, window: int | None):
    if not window:
        return x, y
    idx = np.arange(len(x) - window + 1)
    return np.stack([x[i:i + window] for i in idx]), y[idx + window - 1]


def plain_fit(toml: Path) -> str:
    """Train the case as its user would (validation included); say where it went non-finite."""
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
    if n_train < len(df):
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
                row["fit"] = plain_fit(toml)
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
