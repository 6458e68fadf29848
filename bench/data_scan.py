"""Big data: nandoc's streaming scan and the whole `nandoc check` on a generated ~1 GB CSV, next
to pandas.read_csv of the same file, measured in the same run.

    python bench/data_scan.py [--mb 1000] [--runs 3]

It writes, into a temporary folder that is deleted afterwards, a numeric CSV of about --mb MB
(8 float features and a 0/1 label, one NaN near the end) and a tiny Keras model, then times
each of these in its own subprocess, with the peak resident memory of that process
(`os.wait4`), interleaved over --runs rounds (medians; the file cache is warmed first):

  pandas           pandas.read_csv(file)
  scan             nandoc's streaming scan alone (open_table + scan_table, as check plans it)
  scan, as text    the same scan with every column read as text (the fallback path)
  check            nandoc check model.keras data.csv --target label (TensorFlow included)
  model + pandas   a script that loads the model and calls pandas.read_csv

Goals: the scan faster than pandas and under 1 GB peak; check no slower than model + pandas, at
1.5 GiB peak or less, naming the NaN's row. Not part of the test suite (minutes, not seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import treerss  # bench/treerss.py: run next to this script

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1"}
FEATURES = 8
CHUNK_ROWS = 1_000_000
NAN_FROM_END = 37  # the NaN's row counted from the end of the file (1 = the last row)

PANDAS = "import pandas, sys; pandas.read_csv(sys.argv[1])"
SCAN = """
import sys
from pathlib import Path
from nandoc.config import Config
from nandoc.loading.dataset import scan_plan
from nandoc.loading.table import open_table, scan_table
table = open_table(Path(sys.argv[1]))
if sys.argv[2] == "text":
    from dataclasses import replace
    table = replace(table, string_columns=frozenset(table.columns))
scan = scan_table(table, scan_plan(Config(target=("label",)), table))
assert scan.columns["f3"].n_nan == 1
"""
MODEL_PANDAS = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, pandas
model = keras.saving.load_model(sys.argv[1])
frame = pandas.read_csv(sys.argv[2])
"""
MAKE_MODEL = f"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
m = keras.Sequential([keras.Input(({FEATURES},)), keras.layers.Dense(16, activation="relu"),
                      keras.layers.Dense(1, activation="sigmoid")])
m.compile(optimizer="adam", loss="binary_crossentropy")
m.save(sys.argv[1])
"""


def write_csv(path: Path, megabytes: float) -> tuple[int, int]:
    """About `megabytes` MB of rows, written chunk by chunk; returns (rows, the NaN's row)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    bytes_per_row = 8 * FEATURES + 2  # "-0.12345," per feature, then the label
    rows = int(megabytes * 1e6 / bytes_per_row)
    nan_row = rows - NAN_FROM_END + 1
    with path.open("wb") as fh:
        fh.write((",".join([*(f"f{i}" for i in range(FEATURES)), "label"]) + "\n").encode())
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            x = rng.normal(size=(n, FEATURES)).astype(np.float32).round(5)
            if start <= nan_row - 1 < start + n:
                x[nan_row - 1 - start, 3] = np.nan
            frame = pl.DataFrame({f"f{i}": x[:, i] for i in range(FEATURES)})
            frame = frame.with_columns(pl.Series("label", (rng.random(n) > 0.5).astype(np.int8)))
            frame.write_csv(fh, include_header=False, null_value="NaN")
    return rows, nan_row


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB of the process tree, exit code) of one subprocess
    (`treerss.py`: a scan in a child process of nandoc's counts too)."""
    wall, peak, code, _ = treerss.run(cmd, env=ENV, cwd=REPO)
    return wall, peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="size of the CSV in MB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="nandoc-bench-") as tmp:
        d = Path(tmp)
        data, model, report = d / "data.csv", d / "model.keras", d / "report.json"
        started = time.perf_counter()
        n_rows, nan_row = write_csv(data, args.mb)
        subprocess.run([py, "-c", MAKE_MODEL, str(model)], env=ENV, check=True,
                       stderr=subprocess.DEVNULL)
        size_mb = data.stat().st_size / 1e6
        print(f"{size_mb:.0f} MB, {n_rows:,} rows x {FEATURES + 1} columns, NaN at row "
              f"{nan_row:,}; written in {time.perf_counter() - started:.0f} s", flush=True)
        with data.open("rb") as fh:  # warm the file cache
            while fh.read(1 << 24):
                pass
        commands = {
            "pandas.read_csv": [py, "-c", PANDAS, str(data)],
            "nandoc scan": [py, "-c", SCAN, str(data), "typed"],
            "nandoc scan, as text": [py, "-c", SCAN, str(data), "text"],
            "nandoc check": [py, "-m", "nandoc", "check", str(model), str(data), "--target",
                             "label", "--format", "json", "--output", str(report)],
            "model + pandas.read_csv": [py, "-c", MODEL_PANDAS, str(model), str(data)],
        }
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
        for _ in range(args.runs):  # interleaved: load on the machine hits every side alike
            for name, cmd in commands.items():
                wall, peak, code = measure(cmd)
                if code not in (0, 1):
                    raise SystemExit(f"{name} failed with exit code {code}")
                results[name].append((wall, peak))
                print(f"  {name:<26}{wall:6.1f} s {peak:7.0f} MiB", flush=True)
        doc = json.loads(report.read_text())
        named = [f for f in doc["findings"] if f["cause"] == "data-nonfinite"
                 and f["location"].get("column") == "f3"]
        found = named[0]["location"]["rows"] if named else None
    med = {k: (statistics.median(w for w, _ in v), max(p for _, p in v))
           for k, v in results.items()}
    print("\n| what | median s | MB/s | peak MiB |\n| --- | --- | --- | --- |")
    for name, (wall, peak) in med.items():
        print(f"| {name} | {wall:.2f} | {size_mb / wall:.0f} | {peak:.0f} |")
    pandas_s, scan_s = med["pandas.read_csv"][0], med["nandoc scan"][0]
    check_s, script_s = med["nandoc check"][0], med["model + pandas.read_csv"][0]
    print(f"\nscan vs pandas: {pandas_s / scan_s:.2f}x the speed, "
          f"{med['nandoc scan'][1] / med['pandas.read_csv'][1]:.2f}x the memory")
    print(f"check vs model + pandas: {check_s / script_s:.2f}x the time, "
          f"{med['nandoc check'][1] / med['model + pandas.read_csv'][1]:.2f}x the memory")
    ok = found == [nan_row]
    print(f"check named the NaN at row {found} (expected [{nan_row}]): "
          f"{'right' if ok else 'WRONG'}")
    goals = {
        "scan faster than pandas": scan_s < pandas_s,
        "scan under 1 GiB peak": med["nandoc scan"][1] < 1024,
        "check no slower than model + pandas": check_s <= script_s,
        "check at most 1.5 GiB peak": med["nandoc check"][1] <= 1536,
        "check names the NaN's row": ok,
    }
    for goal, met in goals.items():
        print(f"  {'met' if met else 'MISSED'}: {goal}")
    sys.exit(0 if all(goals.values()) else 1)


if __name__ == "__main__":
    main()
