"""(Re)build the runnable samples in sample_configs/.

    python sample_configs/build_samples.py

Writes four folders next to this file, each with model.keras (compiled, untrained), data.csv,
nandoc.toml, README.md and, where the model has a custom loss, losses.py:

  conv1d_timeseries/   user report 000: Conv1D + BatchNorm on unscaled time series,
                       softmax over one unit, a validation split shorter than one window
  sparse_events_loss/  user report 001: custom loss with a Python `if` on a tensor and
                       unclipped logs
  where_trap_loss/     user report 002: custom loss whose `where` has a non-finite unselected
                       branch (finite loss, NaN gradient)
  healthy/             a healthy binary classifier: nandoc should find no error

Deterministic: fixed seeds for numpy and Keras. Nothing is trained (the models are saved compiled
and untrained); runs in a few seconds. The READMEs record what plain `model.fit` did on these
files, measured once with Keras 3.15 / TensorFlow 2.21 on CPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0


def _keras():
    import keras

    keras.utils.set_random_seed(SEED)
    return keras


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def _import_losses(path: Path):
    """Import a sample's losses.py as the module `losses` (what the saved model refers to)."""
    spec = importlib.util.spec_from_file_location("losses", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _save(model, folder: Path) -> None:
    # Build the optimizer's slots before saving, so that loading the file does not warn
    # "Skipping variable loading for optimizer" (an unbuilt optimizer saves 2 variables).
    model.optimizer.build(model.trainable_variables)
    path = folder / "model.keras"
    if path.exists():
        path.unlink()
    model.save(path)


# --------------------------------------------------------------------------------------------
# 1. conv1d_timeseries (report 000)
# --------------------------------------------------------------------------------------------

CONV_T = 16  # timesteps per window
CONV_ROWS = 600  # validation_split 0.02 -> the last 12 rows: fewer than one window of 16

CONV_TOML = """\
# nandoc config for the Conv1D time-series sample (user report 000).
# Paths are relative to this file.

[model]
path = "model.keras"           # Conv1D x3 + BatchNorm, Dense(1, softmax) output named "output"

[data]
path = "data.csv"              # one row per minute; raw, unscaled sensor units
target = "label"               # 0/1; every other numeric column is a feature (6 of them)
validation_split = 0.02        # the LAST 2% of rows: 12 rows, fewer than one window of 16

[data.window]                  # the model reads windows of rows: (16 timesteps, 6 features)
length = 16                    # rows per window; a window's label is its last row's label
stride = 1

[train]
batch_size = 32
epochs = 5
"""


def build_conv1d(folder: Path) -> None:
    keras = _keras()
    from keras import layers

    rng = np.random.default_rng(SEED)
    n = CONV_ROWS
    i = np.arange(n)
    # Epoch timestamps in nanoseconds, one row per minute (int64, ~1.7e18), and a quadratic
    # trend feature the user derived from them without scaling (~2.9e36).
    ts = np.int64(1_700_000_000_000_000_000) + i.astype(np.int64) * np.int64(60_000_000_000)
    ts_sq = ts.astype(np.float64) ** 2
    day = 2 * np.pi * i / 240.0
    temp_c = 40 + 8 * np.sin(day) + rng.normal(0, 0.5, n)
    pressure_pa = 101325 + 250 * np.cos(day) + rng.normal(0, 15, n)
    burst = (rng.random(n) < 0.04).astype(float)
    burst = np.convolve(burst, np.ones(8), mode="same").clip(0, 1)  # faults last a few minutes
    vibration_mm_s = np.abs(1.5 + 4.0 * burst + rng.normal(0, 0.4, n))
    current_a = 8 + 3 * burst + 0.05 * (temp_c - 40) + rng.normal(0, 0.3, n)
    label = ((vibration_mm_s > 3.5) & (current_a > 9.0)).astype(int)
    df = pd.DataFrame({
        "timestamp_ns": ts,
        "timestamp_ns_sq": ts_sq,
        "temp_c": temp_c.round(2),
        "pressure_pa": pressure_pa.round(1),
        "vibration_mm_s": vibration_mm_s.round(3),
        "current_a": current_a.round(3),
        "label": label,
    })
    n_features = df.shape[1] - 1

    reg = keras.regularizers.l1_l2(l1=0.01, l2=0.01)
    inp = keras.Input(shape=(CONV_T, n_features), name="window")
    x = inp
    for b in (1, 2, 3):
        x = layers.Conv1D(filters=16, kernel_size=3, padding="same", kernel_regularizer=reg,
                          name=f"conv{b}")(x)
        x = layers.BatchNormalization(name=f"bn{b}")(x)
        x = layers.ReLU(name=f"relu{b}")(x)
    x = layers.Dropout(0.25, name="dropout")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    out = layers.Dense(1, activation="softmax", name="output")(x)  # the bug: softmax over 1 unit
    model = keras.Model(inp, out, name="conv1d_timeseries")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

    _write_csv(folder / "data.csv", df)
    _write(folder / "nandoc.toml", CONV_TOML)
    _save(model, folder)


# --------------------------------------------------------------------------------------------
# 2. sparse_events_loss (report 001)
# --------------------------------------------------------------------------------------------

SPARSE_LOSSES = '''\
"""The custom loss of user report 001, ported from Keras 2 (`K.sum`, `K.log`) to keras.ops.

Kept as the user wrote it, bugs included: a Python `if` on a tensor (line 11) and logs of
y_pred and 1 - y_pred that nothing keeps away from 0 (lines 12 and 14).
"""
from keras import ops


def sparse_penalty_logits(y_true, y_pred):
    penalty = 10
    if y_true != 0:
        loss = -penalty * ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    else:
        loss = -ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    return loss
'''

SPARSE_TOML = """\
# nandoc config for the sparse-events sample (user report 001).
# Paths are relative to this file.

[model]
path = "model.keras"             # MLP Dense(32, relu) x3 -> Dense(1, sigmoid), adam
custom_objects = ["losses.py"]   # defines sparse_penalty_logits, the compiled loss

[data]
path = "data.csv"                # one row per hour of an idle system
target = "label"                 # 1 when requests arrive (~5% of rows)
validation_split = 0.2           # the last 20% of rows

[train]
batch_size = 32
epochs = 5
"""


def build_sparse(folder: Path) -> None:
    keras = _keras()
    from keras import layers

    rng = np.random.default_rng(SEED + 1)
    n = 2000
    i = np.arange(n)
    hour = i % 24
    weekday = (i // 24) % 7
    office = ((weekday < 5) & (hour >= 8) & (hour <= 18)).astype(float)
    cpu_load = np.clip(0.15 + 0.45 * office + rng.normal(0, 0.12, n), 0, 1)
    req_rate_k = np.clip(0.2 + 1.5 * office * rng.random(n) + rng.normal(0, 0.1, n), 0, None)
    # Sparse events: a request burst starts on some office hours and lasts 2-3 hours.
    start = (office > 0) & (rng.random(n) < 0.065)
    event = np.zeros(n, dtype=int)
    for s in np.flatnonzero(start):
        event[s:s + 3] = 1
    cpu_load = np.clip(cpu_load + 0.25 * event, 0, 1)
    req_rate_k = req_rate_k + 1.2 * event
    df = pd.DataFrame({
        "hour": hour,
        "weekday": weekday,
        "cpu_load": cpu_load.round(3),
        "req_rate_k": req_rate_k.round(3),
        "label": event,
    })

    _write(folder / "losses.py", SPARSE_LOSSES)
    losses = _import_losses(folder / "losses.py")
    model = keras.Sequential([
        keras.Input(shape=(df.shape[1] - 1,), name="features"),
        layers.Dense(32, activation="relu", name="hidden1"),
        layers.Dense(32, activation="relu", name="hidden2"),
        layers.Dense(32, activation="relu", name="hidden3"),
        layers.Dense(1, activation="sigmoid", name="output"),
    ], name="sparse_events")
    model.compile(optimizer="adam", loss=losses.sparse_penalty_logits)

    _write_csv(folder / "data.csv", df)
    _write(folder / "nandoc.toml", SPARSE_TOML)
    _save(model, folder)


# --------------------------------------------------------------------------------------------
# 3. where_trap_loss (report 002)
# --------------------------------------------------------------------------------------------

WHERE_LOSSES = '''\
"""The custom loss of user report 002, ported from tf.where/tf.exp to keras.ops.

f(x) = 1/(1 - exp(-x)) - 1/x, with f(0) = 1/2, is smooth and bounded in (0, 1); the user guards
x near 0 with a `where` (line 15). Its value is finite everywhere, but `where` does not stop
the gradient of the branch it does not select: at x == 0 (and wherever 1 - exp(-x) rounds to 0
in float32, |x| < 6e-8) that branch's gradient is inf, and 0 * inf = NaN.

f(x) - 1/2 is odd and increasing, so x * (f(x) - 1/2) is a smooth Huber-like regression loss:
about x**2 / 12 near 0 and |x| / 2 far out.
"""
from keras import ops


def f(x):
    return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)


def where_loss(y_true, y_pred):
    x = y_pred - y_true
    return ops.mean(x * (f(x) - 0.5))
'''

WHERE_TOML = """\
# nandoc config for the where-trap sample (user report 002).
# Paths are relative to this file.

[model]
path = "model.keras"             # MLP Dense(32, relu) x2 -> Dense(1) linear output, adam
custom_objects = ["losses.py"]   # defines f and where_loss, the compiled loss

[data]
path = "data.csv"                # four scaled features, noise-free numeric target
target = "latency_ms"            # regression target (~40)
validation_split = 0.2           # the last 20% of rows

[train]
batch_size = 32
epochs = 100                     # plain fit: NaN weights at epoch 45-66 (shuffle off; by CPU)
shuffle = false                  # nandoc's default; Keras' own default (shuffle=True) varies
"""


def build_where(folder: Path) -> None:
    keras = _keras()
    from keras import layers

    rng = np.random.default_rng(SEED + 2)
    n = 3000
    x = rng.normal(size=(n, 4)).round(4)
    # Noise-free target: the model can fit it closely, and once its residuals are small,
    # float32 round-off makes y_pred - y_true exactly 0 for some sample.
    latency = 40 + 0.5 * x[:, 0] - 0.3 * x[:, 1] + 0.2 * x[:, 2]
    df = pd.DataFrame({
        "load": x[:, 0],
        "queue": x[:, 1],
        "temp": x[:, 2],
        "jitter": x[:, 3],
        "latency_ms": latency.round(4),
    })

    _write(folder / "losses.py", WHERE_LOSSES)
    losses = _import_losses(folder / "losses.py")
    model = keras.Sequential([
        keras.Input(shape=(4,), name="features"),
        layers.Dense(32, activation="relu", name="hidden1"),
        layers.Dense(32, activation="relu", name="hidden2"),
        layers.Dense(1, name="output"),  # linear
    ], name="where_trap")
    model.compile(optimizer="adam", loss=losses.where_loss)

    _write_csv(folder / "data.csv", df)
    _write(folder / "nandoc.toml", WHERE_TOML)
    _save(model, folder)


# --------------------------------------------------------------------------------------------
# 4. healthy
# --------------------------------------------------------------------------------------------

HEALTHY_TOML = """\
# nandoc config for the healthy sample: nandoc should report no error here.
# Paths are relative to this file.

[model]
path = "model.keras"       # Dense(16, relu) -> Dense(1, sigmoid), binary_crossentropy, adam

[data]
path = "data.csv"          # four standardised features, no missing values
target = "label"           # 0/1
validation_split = 0.2     # the last 20% of rows

[train]
batch_size = 32
epochs = 5
"""


def build_healthy(folder: Path) -> None:
    keras = _keras()
    from keras import layers

    rng = np.random.default_rng(SEED + 3)
    n = 1000
    x = rng.normal(size=(n, 4))
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.5 * x[:, 2] + rng.normal(0, 0.5, n)
    df = pd.DataFrame({
        "x1": x[:, 0].round(4),
        "x2": x[:, 1].round(4),
        "x3": x[:, 2].round(4),
        "x4": x[:, 3].round(4),
        "label": (logit > 0).astype(int),
    })
    model = keras.Sequential([
        keras.Input(shape=(4,), name="features"),
        layers.Dense(16, activation="relu", name="hidden"),
        layers.Dense(1, activation="sigmoid", name="output"),
    ], name="healthy")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

    _write_csv(folder / "data.csv", df)
    _write(folder / "nandoc.toml", HEALTHY_TOML)
    _save(model, folder)


# --------------------------------------------------------------------------------------------
# READMEs (what was measured with Keras 3.15 / TensorFlow 2.21 on CPU)
# --------------------------------------------------------------------------------------------

READMES = {
    "conv1d_timeseries": """\
# conv1d_timeseries: user report 000

Rebuilds the report "the loss becomes NaN soon when classifying a time series": a Conv1D +
BatchNormalization binary classifier whose loss was NaN "from the start" until the user put
RobustScaler on the numeric columns, with a softmax output and (as one answer suspected) a
validation set without samples. Model: three blocks `conv{1,2,3}` (Conv1D(16, 3), l1_l2) ->
`bn{1,2,3}` -> `relu{1,2,3}`, Dropout, GlobalAveragePooling1D, Dense `output`; adam,
binary_crossentropy. Input: windows of 16 rows x 6 features.

**What is wrong**
- `data.csv` is in raw units: `timestamp_ns` (epoch nanoseconds, ~1.7e18), `timestamp_ns_sq` (a
  quadratic trend term derived from it, ~2.9e36) and `pressure_pa` (~1.0e5).
- The layer `output` is `Dense(1, activation="softmax")`: a softmax over one unit is always 1.0.
- `validation_split = 0.02` leaves the last 12 rows, fewer than one 16-row window: 0 windows.

**What plain `model.fit` does** (Keras 3.15, TensorFlow 2.21, CPU; batch 32, no shuffle)
- Raw CSV: the loss is NaN at epoch 1, step 1. `conv1`'s outputs are finite (up to 1.3e36), but
  `bn1` sums them over the batch in float32: the batch variance overflows to inf on all 16
  channels and the batch mean to +-inf on 5, and (x - inf) * rsqrt(inf) = NaN. After that step
  every weight of the model is non-finite and every prediction is NaN.
- `timestamp_ns` alone (with `timestamp_ns_sq` zeroed) trains with a finite loss. With
  `timestamp_ns_sq` at 1e20 to 1e36 instead, the loss stays finite but `bn1/moving_variance`
  becomes inf at step 1 and `bn1` outputs a constant: a silent failure.
- After RobustScaler (median / IQR fitted on the training rows): 5 epochs with a finite loss
  (about 3.5 -> 2.2, mostly the l1_l2 penalty), but every prediction is exactly 1.0 (the softmax).
- The 12 validation rows as `validation_data`: 0 windows; Keras warns "Your input ran out of
  data; interrupting training" and the history has no `val_loss`.

**Run**: `nandoc check --config sample_configs/conv1d_timeseries/nandoc.toml`

**What nandoc should find**, in rank order:
1. `data-unscaled` (error): column `timestamp_ns_sq` (up to 2.9e36), also `timestamp_ns` and
   `pressure_pa`; the first NaN is at step 1 in layer `bn1`.
2. `softmax-single-unit` (error): layer `output`.
3. `empty-validation` (error): `validation_split` 0.02 gives 12 rows, fewer than one window of 16.
""",
    "sparse_events_loss": """\
# sparse_events_loss: user report 001

Rebuilds "how to implement a custom loss in Keras for a sparse dataset": an idle system that
gets requests at some hours (`label` 1 on 5% of the rows), an MLP `hidden1..3` (Dense(32, relu))
-> `output` (Dense(1, sigmoid)), `optimizer="adam"`, and the user's loss `sparse_penalty_logits`
ported from Keras 2 (`K.sum`, `K.log`) to `keras.ops` with its bugs kept (`losses.py`).
Features: `hour`, `weekday`, `cpu_load`, `req_rate_k`.

**What is wrong** (in `losses.py`)
- line 11, `if y_true != 0:`: a Python `if` on a tensor. It cannot run in a compiled step, and
  where it runs (eagerly, batch of 1) it picks one branch per batch, not per sample.
- lines 12 and 14, `ops.log(y_pred)` and `ops.log(1 - y_pred)`: nothing keeps y_pred off 0 and 1.
  A float32 sigmoid is exactly 0.0 for logits <= -88 and exactly 1.0 for logits >= 17; then the
  log is -inf and `y_true * ops.log(y_pred)` is 0 * -inf = NaN.
- `adam` without `clipnorm`.

**What plain `model.fit` does** (Keras 3.15, TensorFlow 2.21, CPU; batch 32)
- Compiled (the default): `OperatorNotAllowedInGraphError: Using a symbolic tf.Tensor as a
  Python bool is not allowed` while tracing the first step. Nothing trains.
- `run_eagerly=True`, batch 32: `ValueError: The truth value of an array with more than one
  element is ambiguous`.
- `run_eagerly=True`, batch 1, no shuffle: at the default learning rate (1e-3), 3 epochs ran
  without a NaN (step losses up to 16, the x10 penalty). With Adam(1e-2) the loss is NaN at
  epoch 1, step 19: row 19 (label 0, hour 18) had a logit of -92, the sigmoid gave exactly 0.0
  and 0 * log(0) = NaN; every weight is NaN after that step.

**Fix**: `y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)` before the logs, a per-sample weight
`ops.where(y_true > 0, penalty, 1.0)` instead of the `if` (or binary_crossentropy with
`class_weight`), a mean instead of a sum, and `keras.optimizers.Adam(clipnorm=1.0)`.

**Run**: `nandoc check --config sample_configs/sparse_events_loss/nandoc.toml`

**What nandoc should find**, in rank order:
1. `tensor-python-branch` (error): `losses.py` line 11, in `sparse_penalty_logits`.
2. `unclipped-log` (error): `losses.py` lines 12 and 14 (`ops.log(y_pred)`, `ops.log(1 - y_pred)`).
""",
    "where_trap_loss": """\
# where_trap_loss: user report 002

Rebuilds "how to handle a custom loss with 1/(1-exp(-x)) - 1/x": the user guarded x near 0 with
`tf.where(tf.abs(x) < 0.1, 0.5 + x/12, 1/(1-exp(-x)) - 1/x)` and the loss turned NaN after about
40 epochs (later, but still, in float64). `losses.py` ports that `f` to `keras.ops` unchanged
(line 15). The user's `f(x) + f(x + 50)` keeps falling as x -> -inf, so it has no minimum on a
linear output; the sample uses the same `f` in a Huber-like regression loss,
`where_loss = mean(x * (f(x) - 0.5))`, x = y_pred - y_true (~x**2/12 near 0, ~|x|/2 far out).
Model: `hidden1`, `hidden2` (Dense(32, relu)) -> `output` (Dense(1), linear), adam. Data: scaled
features `load`, `queue`, `temp`, `jitter`; noise-free target `latency_ms` (~40); 3000 rows.

**What is wrong**: `where` computes both branches and does not stop the gradient of the one it
does not select. At x == 0, 1 - exp(-x) is 0, the unselected branch's gradient is inf, and
0 * inf = NaN: the loss is finite (0), its gradient NaN. Measured in float32: x = 0 and x = 1e-8
give a NaN gradient, x = 5e-8 a finite one. (The selected branch also overflows for x < -88:
x = -100 gives a loss of 49 and a NaN gradient.)

**What plain `model.fit` does** (Keras 3.15, TensorFlow 2.21, CPU; batch 32, validation_split 0.2)
- shuffle=False: the weights turn NaN at epoch 45, step 26 on one x86 CPU and at epoch 66, step 66
  on another (which residual rounds to exactly 0 depends on the CPU's float kernels); the loss
  logged for that step is
  still finite (3.7e-4), the next ones are NaN. With the weights just before that step, one
  training sample had y_pred - y_true == 0.0 exactly (median |residual| 0.03): float32 round-off
  hits 0 once the fit is close, and the gradient over that sample is NaN in every layer.
- shuffle=True (Keras' default) varies by run: NaN weights at epochs 23, 36 and 42 in three
  runs; each time, just before, one training sample's residual was exactly 0.

**Fix, the "double where"**: give the unselected branch an input where it is finite.

```python
def f(x):
    small = ops.abs(x) < 0.1
    x_safe = ops.where(small, ops.ones_like(x), x)
    return ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)
```

Measured: 150 epochs without a NaN, shuffled or not. If residuals can go below -88, also clip
`x_safe` to [-80, 80] (exp(-x) overflows float32 there) and use the asymptotes beyond.

**Run**: `nandoc check --config sample_configs/where_trap_loss/nandoc.toml`

**What nandoc should find**: `where-gradient-trap` (error) at `losses.py` line 15, the
`ops.where` in `f` (called from `where_loss`, line 20): finite value, NaN gradient at x == 0.

**Resume at the failing epoch**: `epoch65.keras` is the model with its Adam state at the end of
epoch 65 of nandoc's own replay loop (shuffle off, seed 0), and `epoch65.keras.json` says where it
stands (epoch 66, step 1). A full `nandoc replay` reaches the NaN at epoch 66, step 66 (global step
4941, 75 steps an epoch) on the CPU it was measured on; from the checkpoint, the same place comes
in the first replayed epoch, in seconds:

```
nandoc replay -c sample_configs/where_trap_loss/nandoc.toml \\
    --from sample_configs/where_trap_loss/epoch65.keras --epoch 66
```

The batches are nandoc's replay order for epoch 66 (the same [train] shuffle and seed as a full
replay), not necessarily those of your own `fit`. Rebuild the checkpoint with
`python sample_configs/build_samples.py --where-checkpoint` (it trains 65 epochs, ~20 s).
""",
    "healthy": """\
# healthy: a model and data without a NaN problem

The control sample: nandoc must not cry wolf here. A binary classifier `hidden` (Dense(16, relu))
-> `output` (Dense(1, sigmoid)), binary_crossentropy, adam, on four standardised features `x1` to
`x4` (no missing values) and a 0/1 `label` (51% ones), 1000 rows, validation_split 0.2.

**What plain `model.fit` does** (Keras 3.15, TensorFlow 2.21, CPU; batch 32, 5 epochs): a finite
loss falling from about 0.60 to 0.46, val_loss from about 0.59 to 0.47, val accuracy
about 0.83.

**Run**: `nandoc check --config sample_configs/healthy/nandoc.toml`

**What nandoc should find**: no finding at error level; exit code 0.
""",
}


SAMPLES = {
    "conv1d_timeseries": build_conv1d,
    "sparse_events_loss": build_sparse,
    "where_trap_loss": build_where,
    "healthy": build_healthy,
}


def build_where_checkpoint(folder: Path, epochs: int = 65) -> None:
    """The where-trap model trained `epochs` epochs in nandoc's replay loop, saved with its
    optimizer state and the sidecar for `nandoc replay --from` (epoch `epochs` + 1, step 1)."""
    from nandoc.config import load_config
    from nandoc.drivers.replay import save_checkpoint

    cfg = load_config(folder / "nandoc.toml")
    side = save_checkpoint(cfg, epochs, folder / f"epoch{epochs}.keras")
    # The sidecar names the checkpoint relative to the repository root, as the README runs it.
    info = json.loads(side.read_text())
    info["replay"] = (f"nandoc replay -c sample_configs/{folder.name}/nandoc.toml --from "
                      f"sample_configs/{folder.name}/epoch{epochs}.keras --epoch {epochs + 1}")
    side.write_text(json.dumps(info, indent=2) + "\n")
    print(f"built {side.with_suffix('')} and its sidecar")


def main(argv: list[str]) -> int:
    if argv == ["--where-checkpoint"]:
        build_where_checkpoint(HERE / "where_trap_loss")
        return 0
    names = argv or list(SAMPLES)
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        print(f"unknown sample(s): {', '.join(unknown)}; known: {', '.join(SAMPLES)}",
              file=sys.stderr)
        return 2
    for name in names:
        folder = HERE / name
        SAMPLES[name](folder)
        _write(folder / "README.md", READMES[name])
        sizes = ", ".join(f"{p.name} {p.stat().st_size // 1024 + 1} KB"
                          for p in sorted(folder.iterdir())
                          if p.is_file() and p.suffix in (".keras", ".csv"))
        print(f"built sample_configs/{name}/ ({sizes})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
