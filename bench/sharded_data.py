"""Sharded data: `nandoc check` on a glob of parquet shards totalling ~10 GB, next to pandas
reading the same shards, measured in the same run.

    python bench/sharded_data.py [--gb 10] [--dir /tmp/nandoc-shards] [--shard-mb 256]
                                 [--pyarrow-path DIR] [--runs 1]

It writes into --dir (kept, and reused when the shards for this --gb are already there) parquet
shards part-1.parquet .. part-N.parquet (--shard-mb each) of 8 float64 features and a 0/1
label, generated in chunks of CHUNK_ROWS rows and written with polars one shard at a time (the
writer holds one shard at most), one NaN planted in the last shard; and a tiny Keras model.
pandas.read_parquet needs pyarrow: pass --pyarrow-path when the environment lacks it.
Then it runs, each in its own subprocess with the peak resident memory of its process tree
(`treerss.py`), --runs rounds in turn (the file cache is warmed first by reading every shard):

  pandas  a script calling pandas.read_parquet(shard) on every shard in order, keeping nothing
          (each frame is dropped before the next is read: reading every shard, not holding them)
  model + pandas  the same after keras.saving.load_model(model.keras): TensorFlow's import
          included, as check's is (the comparison of the 1 GB CSV target, bench/data_scan.py)
  scan    nandoc's streaming scan of the glob alone (open_table + scan_table, as check plans
          it), without TensorFlow
  check   nandoc check model.keras '<dir>/part-*.parquet' --target label --format json

and prints each round's figures, the medians, the time ratios, and whether the report named the
NaN's shard and row.
Targets: check at most 1.5 GiB peak (TensorFlow included) and no slower than pandas.
Not part of the test suite (minutes).
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
ROW_BYTES = (FEATURES + 1) * 8
NAN_ROW = 123_457  # the NaN's row within the last shard (from 1)

PANDAS = """
import sys, pandas
for p in sys.argv[1:]:
    frame = pandas.read_parquet(p)
    del frame
"""
# What a user's own look at the data costs once the model is in hand (the 1 GB CSV target's
# comparison, bench/data_scan.py): load the model, then read every shard with pandas.
MODEL_PANDAS = """
import sys, keras, pandas
model = keras.saving.load_model(sys.argv[1])
for p in sys.argv[2:]:
    frame = pandas.read_parquet(p)
    del frame
"""
SCAN = """
import sys
from pathlib import Path
from nandoc.config import Config
from nandoc.loading.dataset import scan_plan
from nandoc.loading.table import open_table, scan_table
table = open_table(Path(sys.argv[1]))
scan = scan_table(table, scan_plan(Config(target=("label",)), table))
assert scan.columns["f3"].n_nan == 1, scan.columns["f3"]
"""
MAKE_MODEL = f"""
import sys, keras
m = keras.Sequential([keras.Input(({FEATURES},)), keras.layers.Dense(16, activation="relu"),
                      keras.layers.Dense(1, activation="sigmoid")])
m.compile(optimizer="adam", loss="binary_crossentropy")
m.save(sys.argv[1])
"""


def write_shards(d: Path, gb: float, shard_mb: int) -> list[Path]:
    import numpy as np
    import polars as pl

    total_rows = int(gb * 1e9 / ROW_BYTES)
    per_shard = max(1, int(shard_mb * 2**20 / ROW_BYTES))
    n = -(-total_rows // per_shard)
    d.mkdir(parents=True, exist_ok=True)
    stamp = d / f"shards-{gb:g}gb-{shard_mb}mb.done"
    paths = [d / f"part-{i}.parquet" for i in range(1, n + 1)]
    if stamp.exists() and all(p.exists() for p in paths):
        print(f"reusing {n} shards in {d}")
        return paths
    for old in d.glob("part-*.parquet"):
        old.unlink()
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(FEATURES)] + ["label"]
    t0 = time.perf_counter()
    for i, path in enumerate(paths, 1):
        rows = per_shard if i < n else total_rows - per_shard * (n - 1)
        chunks, done = [], 0
        while done < rows:  # generated in chunks; one shard (--shard-mb) held at a time
            k = min(CHUNK_ROWS, rows - done)
            x = rng.normal(size=(k, FEATURES))
            y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float64)
            if i == n and done < NAN_ROW <= done + k:
                x[NAN_ROW - done - 1, 3] = np.nan
            chunks.append(pl.DataFrame(dict(zip(names, [*x.T, y], strict=True))))
            done += k
        pl.concat(chunks, rechunk=False).write_parquet(path, compression="snappy",
                                                       row_group_size=CHUNK_ROWS)
        del chunks
        print(f"wrote {path.name} ({rows} rows) {time.perf_counter() - t0:.0f} s", flush=True)
    stamp.write_text("ok\n")
    return paths


def timed(args: list[str], env: dict | None = None) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MiB of the process tree, exit code, stdout) of one child process
    (`treerss.py`: a scan in a child process of nandoc's counts too)."""
    return treerss.run(args, env=env or ENV, cwd=REPO, capture=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=10.0)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "nandoc-shards")
    ap.add_argument("--shard-mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--pyarrow-path", default="",
                    help="a folder holding pyarrow (pip install --target DIR pyarrow), added to "
                         "the pandas child's PYTHONPATH when the environment lacks it: "
                         "pandas.read_parquet needs pyarrow")
    a = ap.parse_args()
    paths = write_shards(a.dir, a.gb, a.shard_mb)
    size = sum(p.stat().st_size for p in paths)
    model = a.dir / "model.keras"
    if not model.exists():
        subprocess.run([sys.executable, "-c", MAKE_MODEL, str(model)], env=ENV, check=True)
    for p in paths:  # warm the file cache
        with p.open("rb") as fh:
            while fh.read(64 * 2**20):
                pass
    pattern = str(a.dir / "part-*.parquet")
    pd_env = {**ENV, "PYTHONPATH": os.pathsep.join(
        x for x in (a.pyarrow_path, ENV.get("PYTHONPATH", "")) if x)}
    commands = {
        "pandas.read_parquet, shard by shard, keeping nothing":
            ([sys.executable, "-c", PANDAS, *map(str, paths)], pd_env),
        "load the model, then pandas.read_parquet shard by shard":
            ([sys.executable, "-c", MODEL_PANDAS, str(model), *map(str, paths)], pd_env),
        "nandoc's scan of the glob alone (no TensorFlow)":
            ([sys.executable, "-c", SCAN, pattern], None),
        "`nandoc check` on the glob (TensorFlow included)":
            ([sys.executable, "-m", "nandoc", "check", str(model), pattern, "--target",
              "label", "--format", "json"], None),
    }
    rounds: dict[str, list[tuple[float, float, int]]] = {w: [] for w in commands}
    named = True
    print(f"\n{len(paths)} shards, {size / 1e9:.2f} GB on disk, {a.dir}")
    print("| round | " + " | ".join(f"{w} (s, MiB)" for w in commands) + " |")
    print("| --- " * (len(commands) + 1) + "|")
    for r in range(a.runs):
        cells = []
        for what, (cmd, env) in commands.items():
            s, mb, rc, out = timed(cmd, env)
            rounds[what].append((s, mb, rc))
            cells.append(f"{s:.1f} s, {mb:.0f}" + ("" if rc in (0, 1) else f" (exit {rc})"))
            if what.startswith("`nandoc check`"):
                named = named and _named(out, paths[-1].name)
        print(f"| {r + 1} | " + " | ".join(cells) + " |", flush=True)

    def med(what: str, k: int = 0) -> float:
        return statistics.median(x[k] for x in rounds[what])

    pd_s, mp_s, sc_s, ck_s = (med(w) for w in commands)
    ck_mb = max(x[1] for x in rounds["`nandoc check` on the glob (TensorFlow included)"])
    print(f"\nmedians of {a.runs}: pandas {pd_s:.1f} s, model + pandas {mp_s:.1f} s, scan "
          f"{sc_s:.1f} s ({size / 1e6 / sc_s:.0f} MB/s), check {ck_s:.1f} s")
    print(f"scan / pandas time: {sc_s / pd_s:.2f}x")
    print(f"check / pandas time: {ck_s / pd_s:.2f}x; check / (model + pandas) time: "
          f"{ck_s / mp_s:.2f}x; check peak {ck_mb / 1024:.2f} GiB (target <= 1.5); NaN named "
          f"as row {NAN_ROW} of {paths[-1].name} in every run: {'yes' if named else 'NO'}")


def _named(out: str, last: str) -> bool:
    try:
        report = json.loads(out)
        return any(f["cause"] == "data-nonfinite" and f["location"].get("file") == last
                   and f["location"].get("rows") == [NAN_ROW] for f in report["findings"])
    except (ValueError, KeyError):
        return False

if __name__ == "__main__":
    main()
