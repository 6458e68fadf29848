"""`nandoc check` and `nandoc replay` on a ~50 M-parameter transformer: peak memory and time.

    python bench/big_model.py [--dir DIR] [--batch 8] [--runs 3] [--no-replay]

Builds once (cached in --dir) a token classifier: Embedding(32000, 512) + position embedding,
11 encoder blocks (MultiHeadAttention 8 x 64, FFN 2048, LayerNorm), mean pooling and a 4-class
head, 51 M parameters; `keras.Input((64,), dtype="int32")`; compiled with Adam and saved as
model.keras, with a 2,000-sample token-id CSV (t0..t63, label) and a nandoc.toml. Then, each
in its own subprocess (peak RSS from the child's ru_maxrss, wall time):

- `import tensorflow` alone, and the floor: `import tensorflow` + `keras.models.load_model`;
- plain training: load + `model.train_on_batch` on one batch: the first step (tracing), then
  the median of --runs steps after one more warm-up;
- `nandoc check --steps 0` (the layer passes and probes on the 4 probed batches, no burst) and
  `nandoc check` (with its watched burst: 50 steps or about 5 s after the first);
- `nandoc replay --steps 5` (peak RSS, wall time).

What it prints against the targets of issue 15:
- time: check <= start-up + 3 plain steps per batch it runs (the 4 probed batches, plus the
  burst's steps), start-up being what a plain training run pays before its first step ends:
  import + load, and, when the burst runs, the first step's tracing;
- memory: the peak, and what it is over `import tensorflow`, over import + load, and over
  plain training, next to 3 x weights + one batch of activations (every layer's output for one
  batch, float32, x 2 for its gradient, plus the attention scores B x heads x T x T per block).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1"}
VOCAB, D, HEADS, FFN, BLOCKS, T, CLASSES, N = 32000, 512, 8, 2048, 11, 64, 4, 2000

BUILD = r"""
import json, sys
import numpy as np, keras
from keras import layers
V, D, H, F, NB, T, C, N = (int(a) for a in sys.argv[1:9])
out = sys.argv[9]
keras.utils.set_random_seed(0)
inp = keras.Input((T,), dtype="int32", name="tokens")
x = layers.Embedding(V, D, name="tok_emb")(inp)
pos = layers.Embedding(T, D, name="pos_emb")(keras.ops.arange(T))
x = x + pos
for i in range(NB):
    a = layers.MultiHeadAttention(H, D // H, name=f"mha{i}")(x, x)
    x = layers.LayerNormalization(name=f"ln{i}a")(x + a)
    f = layers.Dense(F, activation="gelu", name=f"ffn{i}a")(x)
    f = layers.Dense(D, name=f"ffn{i}b")(f)
    x = layers.LayerNormalization(name=f"ln{i}b")(x + f)
x = layers.GlobalAveragePooling1D(name="pool")(x)
y = layers.Dense(C, name="head")(x)
m = keras.Model(inp, y, name="big_transformer")
m.compile(optimizer=keras.optimizers.Adam(1e-4),
          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
m.save(f"{out}/model.keras")
rng = np.random.default_rng(0)
tok = rng.integers(1, V, size=(N, T))
lab = rng.choice(C, size=N, p=[0.4, 0.3, 0.2, 0.1])
with open(f"{out}/data.csv", "w") as fh:
    fh.write(",".join([f"t{j}" for j in range(T)] + ["label"]) + "\n")
    for r, l in zip(tok, lab):
        fh.write(",".join(map(str, r)) + f",{l}\n")
acts = 0
for layer in m.layers:
    for t in keras.tree.flatten(layer.output):
        shape = [s for s in t.shape if s is not None]
        acts += int(np.prod(shape)) * 4  # per sample when the batch axis is None
json.dump({"params": int(m.count_params()), "weight_bytes": int(m.count_params() * 4),
           "act_bytes_per_sample": acts}, open(f"{out}/meta.json", "w"))
"""

FLOOR = r"""
import sys, time
t0 = time.perf_counter()
import tensorflow, keras
m = keras.models.load_model(sys.argv[1])
print(time.perf_counter() - t0)
"""

STEP = r"""
import sys, time, statistics
import numpy as np, keras
m = keras.models.load_model(sys.argv[1])
B, T, V, C, runs = (int(a) for a in sys.argv[2:7])
rng = np.random.default_rng(1)
x = rng.integers(1, V, size=(B, T)).astype("int32"); y = rng.integers(0, C, size=(B,))
t0 = time.perf_counter(); m.train_on_batch(x, y); first = time.perf_counter() - t0
m.train_on_batch(x, y)
ts = []
for _ in range(runs):
    t0 = time.perf_counter(); m.train_on_batch(x, y); ts.append(time.perf_counter() - t0)
print(first, statistics.median(ts))
"""
TF_ONLY = "import tensorflow"


def run_isolated(cmd: list[str], cwd: Path = REPO) -> tuple[float, float, int, str]:
    """Run `cmd` from a fresh helper process so that RUSAGE_CHILDREN is this child's alone."""
    helper = (
        "import json,resource,subprocess,sys,time\n"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n"
        "w=time.perf_counter()-t\n"
        "print(json.dumps([w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024,"
        "p.returncode,p.stdout[-200000:],p.stderr[-3000:]]))\n")
    res = subprocess.run([sys.executable, "-c", helper, *cmd], cwd=cwd, env=ENV,
                         capture_output=True, text=True, check=True)
    wall, peak, rc, out, err = json.loads(res.stdout)
    if rc not in (0, 1):
        sys.stderr.write(err)
    return wall, peak, rc, out


def build(d: Path) -> dict:
    if not (d / "meta.json").exists():
        d.mkdir(parents=True, exist_ok=True)
        args = [VOCAB, D, HEADS, FFN, BLOCKS, T, CLASSES, N]
        subprocess.run([sys.executable, "-c", BUILD, *map(str, args), str(d)], env=ENV,
                       check=True)
    return json.loads((d / "meta.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / f"nandoc_big_{BLOCKS}blocks"))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-replay", action="store_true")
    a = p.parse_args()
    d = Path(a.dir)
    meta = build(d)
    (d / "nandoc.toml").write_text(
        '[model]\npath = "model.keras"\n[data]\npath = "data.csv"\ntarget = "label"\n'
        f"validation_split = 0.1\n[train]\nbatch_size = {a.batch}\nepochs = 1\n")
    model = str(d / "model.keras")
    weights = meta["weight_bytes"] / 2**20
    heads_scores = a.batch * HEADS * T * T * 4 * BLOCKS / 2**20
    acts = 2 * a.batch * meta["act_bytes_per_sample"] / 2**20 + heads_scores
    print(f"params {meta['params']:,}  weights {weights:.0f} MiB  one batch ({a.batch}) of "
          f"activations + gradients ~{acts:.0f} MiB  file {os.path.getsize(model) / 2**20:.0f} MiB")
    fl_wall, fl_peak, _, fl_out = run_isolated([sys.executable, "-c", FLOOR, model])
    floor = float(fl_out.strip().splitlines()[-1])
    print(f"floor: import tensorflow + load  {fl_wall:.1f} s wall ({floor:.1f} s in-process), "
          f"peak {fl_peak:.0f} MiB")
    _, tf_peak, _, _ = run_isolated([sys.executable, "-c", TF_ONLY])
    print(f"import tensorflow alone: peak {tf_peak:.0f} MiB")
    _, st_peak, _, st_out = run_isolated(
        [sys.executable, "-c", STEP, model, str(a.batch), str(T), str(VOCAB), str(CLASSES),
         str(a.runs)])
    compile_s, step = (float(v) for v in st_out.strip().splitlines()[-1].split())
    print(f"plain training (load + train_on_batch, batch {a.batch}): first step {compile_s:.1f} s "
          f"(tracing), then {step:.2f} s median of {a.runs}; peak {st_peak:.0f} MiB")
    probed = 4  # first, random, extreme-values, rare-label
    for steps in ("0", "50"):
        ck_wall, ck_peak, ck_rc, ck_out = run_isolated(
            [sys.executable, "-m", "nandoc", "check", "--config", str(d / "nandoc.toml"),
             "--format", "json", "--steps", steps], cwd=d)
        try:
            rep = json.loads(ck_out)
        except json.JSONDecodeError:
            rep = {}
        burst = rep.get("burst") or {}
        ran = int(burst.get("steps_ran", 0))
        print(f"check --steps {steps}: exit {ck_rc}, status {rep.get('status')}, {ck_wall:.1f} s, "
              f"peak {ck_peak:.0f} MiB; timings {rep.get('timings')}; burst {burst or None}; "
              f"snapshot {rep.get('snapshot')}")
        print(f"  causes: {[f['cause'] for f in rep.get('findings', [])]}")
        # every batch nandoc runs may cost 3 plain steps: the probed batches' passes and the
        # burst's steps; start-up is what a plain training run pays before its first step
        # ends: import + load, and for the burst the first step's tracing
        batches = probed + ran
        startup = floor + (compile_s - step if ran else 0.0)
        time_target = startup + 3 * step * batches
        print(f"  time: {ck_wall:.1f} s vs start-up {startup:.1f} s + 3 x {step:.2f} s x "
              f"{batches} batches = {time_target:.1f} s: "
              f"{'met' if ck_wall <= time_target else 'MISSED'} "
              f"({(ck_wall - startup) / (step * batches):.2f} plain steps per batch)")
        print(f"  memory: peak {ck_peak:.0f} MiB = {ck_peak / weights:.1f}x weights; over "
              f"import tensorflow {ck_peak - tf_peak:.0f} MiB "
              f"({(ck_peak - tf_peak) / weights:.1f}x), over import + load {ck_peak - fl_peak:.0f}"
              f" MiB ({(ck_peak - fl_peak) / weights:.1f}x), over plain training "
              f"{ck_peak - st_peak:+.0f} MiB ({(ck_peak - st_peak) / weights:+.1f}x); "
              f"3x weights + one batch of activations = {3 * weights + acts:.0f} MiB")
    if not a.no_replay:
        rp_wall, rp_peak, rp_rc, rp_out = run_isolated(
            [sys.executable, "-m", "nandoc", "replay", "--config", str(d / "nandoc.toml"),
             "--steps", "5", "--no-verify-fixes", "--format", "json"], cwd=d)
        try:
            rrep = json.loads(rp_out)
        except json.JSONDecodeError:
            rrep = {}
        print(f"replay --steps 5: exit {rp_rc}, status {rrep.get('status')}, {rp_wall:.1f} s, "
              f"peak {rp_peak:.0f} MiB ({rp_peak / weights:.2f}x weights); "
              f"snapshot {rrep.get('snapshot')}")


if __name__ == "__main__":
    main()
