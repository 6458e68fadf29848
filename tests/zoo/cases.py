"""The NaN zoo: tiny, real "my loss is NaN" cases and healthy controls.

Each case writes into a folder of its own: `model.keras` (compiled, untrained, a few thousand
parameters at most), `data.csv` (a few hundred rows), `nandoc.toml` and, where the case has
custom code, `losses.py`. `CASES` is the table; `Case.build(folder)` returns the nandoc.toml.

`kind` is "broken" or "healthy". `klass` is the family:

    builtin-loss, layer, optimizer, custom-code, data, ranking, healthy

`expect` holds the rank-1 cause ids a careful engineer would accept as the root cause (for
both commands); `expect_check` overrides it for `check` where the static checks cannot see what
only training shows. `why` records what plain `model.fit` did on the built files (batch size
and epochs of the toml, shuffle=False), measured with Keras 3.15 / TensorFlow 2.21 on CPU by
`python bench/accuracy.py --verify`.

Deterministic: every builder seeds numpy and Keras itself. Nothing is trained here.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

BROKEN, HEALTHY = "broken", "healthy"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "broken" or "healthy"
    klass: str
    expect: tuple[str, ...]  # acceptable rank-1 causes (both commands); () for healthy
    why: str  # what plain model.fit does on the built files
    make: Callable[[Path], None]
    expect_check: tuple[str, ...] | None = None  # override for `check`, if it differs

    def expected(self, command: str) -> tuple[str, ...]:
        if command == "check" and self.expect_check is not None:
            return self.expect_check
        return self.expect

    def build(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.make(folder)
        return folder / "nandoc.toml"


CASES: list[Case] = []


def case(name: str, kind: str, klass: str, expect: tuple[str, ...], why: str,
         expect_check: tuple[str, ...] | None = None):
    def deco(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES.append(Case(name, kind, klass, tuple(expect), why, fn,
                          None if expect_check is None else tuple(expect_check)))
        return fn
    return deco


def by_name(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _keras(seed: int):
    import keras

    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(seed)
    return keras


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _losses(folder: Path, source: str):
    """Write losses.py and import it (as the module `losses`, what the saved model names)."""
    path = folder / "losses.py"
    path.write_text(source, encoding="utf-8", newline="\n")
    spec = importlib.util.spec_from_file_location("losses", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _toml(folder: Path, *, target: str | list[str], epochs: int, batch_size: int = 32,
          validation_split: float = 0.0, window: int | None = None, custom: bool = False,
          comment: str = "") -> None:
    tgt = f'"{target}"' if isinstance(target, str) else "[" + ", ".join(
        f'"{t}"' for t in target) + "]"
    lines = [f"# nandoc zoo case. {comment}".rstrip(), "", "[model]", 'path = "model.keras"']
    if custom:
        lines.append('custom_objects = ["losses.py"]')
    lines += ["", "[data]", 'path = "data.csv"', f"target = {tgt}",
              f"validation_split = {validation_split}"]
    if window is not None:
        lines += ["", "[data.window]", f"length = {window}", "stride = 1"]
    lines += ["", "[train]", f"batch_size = {batch_size}", f"epochs = {epochs}",
              "shuffle = false", "seed = 0", ""]
    (folder / "nandoc.toml").write_text("\n".join(lines), encoding="utf-8", newline="\n")


def _csv(folder: Path, df: pd.DataFrame) -> None:
    df.to_csv(folder / "data.csv", index=False, lineterminator="\n")


def _save(model, folder: Path) -> None:
    model.optimizer.build(model.trainable_variables)
    path = folder / "model.keras"
    if path.exists():
        path.unlink()
    model.save(path)
    import keras

    keras.config.set_dtype_policy("float32")


def _scaled(rng: np.random.Generator, n: int, k: int, prefix: str = "x") -> pd.DataFrame:
    x = rng.normal(size=(n, k)).round(4)
    return pd.DataFrame({f"{prefix}{i + 1}": x[:, i] for i in range(k)})


def _mlp(keras, n_in: int, head, hidden: int = 16, act: str = "relu", extra=()):
    L = keras.layers
    return keras.Sequential([keras.Input((n_in,), name="features"), *extra,
                             L.Dense(hidden, activation=act, name="hidden"), head])


def _series(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Three smooth, scaled sensor channels and a 0/1 label (a regime) for windowed models."""
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / 50) + rng.normal(0, 0.1, n)
    b = np.cos(2 * np.pi * t / 37) + rng.normal(0, 0.1, n)
    c = rng.normal(0, 1, n)
    label = (np.convolve(a + 0.5 * b, np.ones(5) / 5, mode="same") > 0).astype(int)
    return pd.DataFrame({"s1": a.round(4), "s2": b.round(4), "s3": c.round(4), "label": label})


# ============================================================================================
# 1. built-in losses
# ============================================================================================

@case("poisson-linear", BROKEN, "builtin-loss", ("activation-loss-mismatch", "domain-error"),
      "loss NaN at epoch 1 step 1: a linear Dense(1) gives negative rates and poisson's "
      "log(y_pred + 1e-7) of a negative is NaN")
def _poisson_linear(folder: Path) -> None:
    keras, rng = _keras(1), _rng(1)
    df = _scaled(rng, 256, 4)
    df["visits"] = rng.poisson(np.exp(0.5 + 0.4 * df.x1 - 0.3 * df.x2))
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, name="rate"))  # linear: rates can be negative
    m.compile(optimizer="adam", loss="poisson")
    _csv(folder, df)
    _toml(folder, target="visits", epochs=3, validation_split=0.2,
          comment="Counts with a linear output and loss='poisson'.")
    _save(m, folder)


@case("poisson-standardised-target", BROKEN, "builtin-loss",
      ("label-out-of-range", "activation-loss-mismatch"),
      "loss NaN at epoch 1 step 1: the target was z-scored (half negative), the linear output "
      "follows it below 0 and poisson takes log of a negative prediction")
def _poisson_std(folder: Path) -> None:
    keras, rng = _keras(2), _rng(2)
    df = _scaled(rng, 256, 3)
    counts = rng.poisson(np.exp(1.0 + 0.5 * df.x1)).astype(float)
    df["orders_z"] = ((counts - counts.mean()) / counts.std()).round(4)  # the bug: z-scored counts
    L = keras.layers
    m = _mlp(keras, 3, L.Dense(1, name="rate"))
    m.compile(optimizer="adam", loss="poisson")
    _csv(folder, df)
    _toml(folder, target="orders_z", epochs=3, validation_split=0.2,
          comment="Standardised (negative) count targets into loss='poisson'.")
    _save(m, folder)


@case("sparse-negative-label", BROKEN, "builtin-loss", ("label-out-of-range",),
      "raises InvalidArgumentError at epoch 1 step 1 on CPU: class id -1 (used for 'unknown') "
      "into sparse_categorical_crossentropy")
def _sparse_negative(folder: Path) -> None:
    keras, rng = _keras(4), _rng(4)
    df = _scaled(rng, 200, 4)
    cls = np.argmax(np.stack([df.x1, df.x2, df.x3, df.x4], 1), 1)
    cls[rng.random(200) < 0.1] = -1  # "unknown" rows, kept as -1
    df["category"] = cls
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(4, activation="softmax", name="probs"))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    _csv(folder, df)
    _toml(folder, target="category", epochs=2, comment="Class id -1 for unknown rows.")
    _save(m, folder)


# ============================================================================================
# 2. built-in layers and activations
# ============================================================================================

@case("rnn-exp-activation", BROKEN, "layer", ("exp-overflow",),
      "loss NaN at epoch 1 step 1: SimpleRNN(activation='exponential') compounds exp(h) over "
      "24 timesteps and overflows float32 on scaled inputs")
def _rnn_exp(folder: Path) -> None:
    keras, rng = _keras(5), _rng(5)
    df = _series(rng, 240)
    L = keras.layers
    m = keras.Sequential([keras.Input((24, 3), name="window"),
                          L.SimpleRNN(8, activation="exponential", name="rnn"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, window=24, validation_split=0.2,
          comment="Windows of 24 rows; an exponential recurrent activation.")
    _save(m, folder)


@case("dense-exp-activation", BROKEN, "layer", ("exp-overflow", "data-unscaled"),
      "loss inf and weights NaN at epoch 1 step 1: Dense(8, activation='exponential') on raw "
      "columns in 0..120 gives exp(>88); with relu the same model stays finite")
def _dense_exp(folder: Path) -> None:
    keras, rng = _keras(6), _rng(6)
    n = 240
    age = rng.integers(18, 90, n)
    humidity = rng.uniform(10, 100, n).round(1)
    visits = rng.integers(0, 120, n)
    df = pd.DataFrame({"age": age, "humidity": humidity, "visits": visits})
    df["risk"] = (0.01 * age + 0.02 * humidity + rng.normal(0, 0.2, n)).round(4)
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(8, activation="exponential", name="hidden"),
                          L.Dense(1, name="output")])
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="risk", epochs=2, comment="An exponential activation on raw columns.")
    _save(m, folder)


@case("batchnorm-huge-column", BROKEN, "layer", ("data-unscaled",),
      "weights (bn's moving statistics, then all) non-finite at epoch 1 step 1: a 1e20-scale "
      "column through Dense -> BatchNormalization; the batch variance (1e40) overflows")
def _bn_huge(folder: Path) -> None:
    keras, rng = _keras(7), _rng(7)
    df = _scaled(rng, 256, 4)
    df["balance_micros"] = (rng.uniform(1, 9, 256) * 1e20).round(-15)
    df["label"] = (df.x1 - df.x2 > 0).astype(int)
    L = keras.layers
    m = keras.Sequential([keras.Input((5,), name="features"), L.Dense(16, name="dense"),
                          L.BatchNormalization(name="bn"), L.ReLU(name="relu"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, validation_split=0.2,
          comment="A raw 1e20 column into a BatchNorm MLP.")
    _save(m, folder)


@case("attention-extreme-column", BROKEN, "layer", ("data-unscaled",),
      "loss NaN at epoch 1 step 1: a ~1e20 column makes the attention scores q.k overflow; "
      "softmax of inf is NaN")
def _attention(folder: Path) -> None:
    keras, rng = _keras(8), _rng(8)
    df = _series(rng, 240)
    df.insert(3, "bytes_total", (np.cumsum(rng.uniform(1, 3, 240)) * 1e19).round(-14))
    L = keras.layers
    inp = keras.Input((8, 4), name="window")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inp, inp)
    x = L.LayerNormalization(name="ln")(L.Add(name="residual")([inp, att]))
    x = L.GlobalAveragePooling1D(name="gap")(x)
    out = L.Dense(1, activation="sigmoid", name="output")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, window=8, validation_split=0.2,
          comment="Self-attention + LayerNorm over windows with a raw cumulative byte count.")
    _save(m, folder)


@case("float16-overflow", BROKEN, "layer", ("float16-overflow",),
      "weights non-finite at epoch 1 step 1 under mixed_float16: columns of 2e4..6e4 sum past "
      "float16's 65504 in the first Dense; the reloaded model's optimizer has no loss scaler")
def _f16(folder: Path) -> None:
    keras, rng = _keras(9), _rng(9)
    n = 240
    rpm = rng.uniform(20000, 60000, n).round(0)
    watts = rng.uniform(20000, 50000, n).round(0)
    load = rng.uniform(0, 1, n).round(3)
    df = pd.DataFrame({"rpm": rpm, "watts": watts, "load": load})
    df["temp_z"] = ((rpm - 40000) / 12000 + load + rng.normal(0, 0.1, n)).round(4)
    keras.config.set_dtype_policy("mixed_float16")
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(16, activation="relu", name="hidden2"),
                          L.Dense(1, name="output", dtype="float32")])
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="temp_z", epochs=2, comment="mixed_float16 on raw engine readings.")
    _save(m, folder)


# ============================================================================================
# 3. the optimizer
# ============================================================================================

@case("sgd-lr10-mse", BROKEN, "optimizer", ("learning-rate-too-high",),
      "loss inf and weights NaN at epoch 1 step 4: SGD(learning_rate=10) on a scaled MSE "
      "regression (at learning_rate=0.1 the same model trains)")
def _sgd_lr10(folder: Path) -> None:
    keras, rng = _keras(10), _rng(10)
    df = _scaled(rng, 256, 6)
    df["y"] = (df.x1 - 0.5 * df.x2 + 0.3 * df.x3 + rng.normal(0, 0.1, 256)).round(4)
    L = keras.layers
    m = _mlp(keras, 6, L.Dense(1, name="output"))
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=10.0), loss="mse")
    _csv(folder, df)
    _toml(folder, target="y", epochs=3, validation_split=0.2, comment="SGD at lr=10.")
    _save(m, folder)


@case("sgd-momentum-lr-high", BROKEN, "optimizer", ("learning-rate-too-high",),
      "loss inf at epoch 2 step 2: SGD(0.3, momentum=0.9) on an MSE regression of 10 scaled "
      "features diverges")
def _sgd_momentum(folder: Path) -> None:
    keras, rng = _keras(11), _rng(11)
    df = _scaled(rng, 256, 10)
    df["y"] = (df.iloc[:, :10].to_numpy() @ rng.normal(0, 1, 10) + rng.normal(0, 0.1, 256)
               ).round(4)
    L = keras.layers
    m = _mlp(keras, 10, L.Dense(1, name="output"), hidden=32)
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.3, momentum=0.9), loss="mse")
    _csv(folder, df)
    _toml(folder, target="y", epochs=4, comment="SGD with momentum at a large learning rate.")
    _save(m, folder)


@case("deep-mlp-large-init", BROKEN, "optimizer", ("exploding-gradients",),
      "loss inf and weights NaN at epoch 1 step 2: 8 relu layers with RandomNormal(stddev=1) "
      "amplify activations and gradients ~4x per layer; SGD(0.01). With the default "
      "glorot init the same model trains")
def _deep_init(folder: Path) -> None:
    keras, rng = _keras(12), _rng(12)
    df = _scaled(rng, 256, 4)
    df["y"] = (np.sin(df.x1) + 0.5 * df.x2 + rng.normal(0, 0.1, 256)).round(4)
    L = keras.layers
    init = keras.initializers.RandomNormal(stddev=1.0, seed=12)
    layers = [L.Dense(32, activation="relu", kernel_initializer=init, name=f"d{i}")
              for i in range(8)]
    m = keras.Sequential([keras.Input((4,), name="features"), *layers,
                          L.Dense(1, kernel_initializer=init, name="output")])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    _csv(folder, df)
    _toml(folder, target="y", epochs=3, comment="A deep relu MLP with a large init.")
    _save(m, folder)


@case("unscaled-target-sgd", BROKEN, "optimizer", ("data-unscaled", "exploding-gradients"),
      "loss inf and weights NaN at epoch 1 step 4: prices in dollars (2e5..8e5) as an MSE "
      "target with SGD(0.01); with the target divided by 1e5 it trains")
def _unscaled_target(folder: Path) -> None:
    keras, rng = _keras(13), _rng(13)
    df = _scaled(rng, 256, 5)
    df["price_usd"] = (500_000 + 120_000 * df.x1 + 60_000 * df.x2
                       + rng.normal(0, 10_000, 256)).round(0)
    L = keras.layers
    m = _mlp(keras, 5, L.Dense(1, name="output"))
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="mse")
    _csv(folder, df)
    _toml(folder, target="price_usd", epochs=3, validation_split=0.2,
          comment="House prices in dollars, unscaled, as the target.")
    _save(m, folder)


# ============================================================================================
# 4. custom code
# ============================================================================================

ACOS_LOSS = '''\
"""Angular loss: the angle between the predicted and the true 2-D heading."""
from keras import ops


def angle_loss(y_true, y_pred):
    p = y_pred / ops.sqrt(ops.sum(ops.square(y_pred), axis=-1, keepdims=True))
    cos = ops.sum(p * y_true, axis=-1)
    return ops.mean(ops.arccos(cos))
'''


@case("acos-angle-loss", BROKEN, "custom-code", ("domain-error",),
      "weights NaN at epoch 4 step 1: the normalised dot product reaches 1 in float32 and "
      "arccos' gradient is inf there. Clipping cos to 1 - 1e-6 trains; an epsilon in the "
      "norm does not (so it is not the division)")
def _acos(folder: Path) -> None:
    keras, rng = _keras(14), _rng(14)
    df = _scaled(rng, 256, 3)
    stopped = rng.random(256) < 0.25  # the logger records a stopped vehicle as heading east
    theta = np.where(stopped, 0.0, np.arctan2(df.x2, df.x1))
    df["stopped"] = stopped.astype(int)
    df["hx"], df["hy"] = np.cos(theta).round(6), np.sin(theta).round(6)
    losses = _losses(folder, ACOS_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(2, name="heading"))  # linear: never exactly (0, 0)
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss=losses.angle_loss)
    _csv(folder, df)
    _toml(folder, target=["hx", "hy"], epochs=5, custom=True,
          comment="arccos of a normalised dot product.")
    _save(m, folder)


NMSE_LOSS = '''\
"""MSE normalised by the batch variance of the target (1 - R^2), so that losses compare
across sensors."""
from keras import ops


def nmse(y_true, y_pred):
    var = ops.mean(ops.square(y_true - ops.mean(y_true)))
    return ops.mean(ops.square(y_true - y_pred)) / var
'''


@case("nmse-constant-batch", BROKEN, "custom-code", ("division-by-zero",),
      "loss inf at epoch 1 step 3 (the batch of rows 64..95 where the meter is stuck: target "
      "constant, batch variance 0), weights NaN after that step")
def _nmse(folder: Path) -> None:
    keras, rng = _keras(15), _rng(15)
    df = _scaled(rng, 256, 4)
    y = (df.x1 + 0.5 * df.x2 + rng.normal(0, 0.1, 256)).round(4)
    y[60:100] = 1.25  # the meter was stuck: a constant stretch that covers one whole batch
    df["flow"] = y
    losses = _losses(folder, NMSE_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, name="output"))
    m.compile(optimizer="adam", loss=losses.nmse)
    _csv(folder, df)
    _toml(folder, target="flow", epochs=2, custom=True,
          comment="MSE divided by the batch variance of the target.")
    _save(m, folder)


STANDARDIZE_LAYER = '''\
"""Per-window standardisation: each channel of each window to zero mean, unit variance."""
import keras
from keras import ops


class WindowStandardize(keras.layers.Layer):
    def call(self, x):
        mean = ops.mean(x, axis=1, keepdims=True)
        std = ops.std(x, axis=1, keepdims=True)
        return (x - mean) / std
'''


@case("window-standardize-flatline", BROKEN, "custom-code",
      ("division-by-zero", "sqrt-at-zero"),
      "loss NaN at epoch 1 step 4: a sensor is flat for 50 rows, windows inside it have std 0 "
      "and (x - mean) / std = 0/0 in the custom layer")
def _window_std(folder: Path) -> None:
    keras, rng = _keras(16), _rng(16)
    df = _series(rng, 260)
    df.loc[100:150, "s3"] = 0.0  # the sensor dropped out and reported 0
    losses = _losses(folder, STANDARDIZE_LAYER)
    L = keras.layers
    m = keras.Sequential([keras.Input((16, 3), name="window"),
                          losses.WindowStandardize(name="standardize"),
                          L.Conv1D(8, 3, activation="relu", name="conv"),
                          L.GlobalAveragePooling1D(name="gap"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, window=16, custom=True,
          comment="A custom per-window standardisation layer.")
    _save(m, folder)


BCE_LOSS = '''\
"""Hand-written weighted binary cross-entropy."""
from keras import ops


def weighted_bce(y_true, y_pred):
    w = 1.0 + 2.0 * y_true
    return -ops.mean(w * (y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
'''


@case("custom-bce-unclipped", BROKEN, "custom-code", ("unclipped-log",),
      "loss NaN at epoch 1 step 8: on separable data with large features the sigmoid "
      "saturates to exactly 1.0 in float32 and log(1 - p) = -inf, 0 * -inf = NaN")
def _custom_bce(folder: Path) -> None:
    keras, rng = _keras(17), _rng(17)
    df = _scaled(rng, 256, 3) * 6.0
    df["label"] = (df.x1 > 0).astype(int)
    losses = _losses(folder, BCE_LOSS)
    L = keras.layers
    m = _mlp(keras, 3, L.Dense(1, activation="sigmoid", name="output"))
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.weighted_bce)
    _csv(folder, df)
    _toml(folder, target="label", epochs=6, custom=True,
          comment="Cross-entropy written by hand without clipping.")
    _save(m, folder)


EUCLID_LOSS = '''\
"""Euclidean distance between the predicted and the true 2-D position."""
from keras import ops


def euclidean(y_true, y_pred):
    return ops.mean(ops.sqrt(ops.sum(ops.square(y_true - y_pred), axis=-1)))
'''


@case("euclidean-sqrt-zero", BROKEN, "custom-code", ("sqrt-at-zero",),
      "weights NaN at epoch 1 step 1 (loss finite): robots parked at (0, 0) meet a relu output "
      "at (0, 0); the distance is 0 and sqrt's gradient there is inf, 0 * inf = NaN")
def _euclid(folder: Path) -> None:
    keras, rng = _keras(18), _rng(18)
    df = _scaled(rng, 256, 4)
    px = np.maximum(df.x1 + 0.3 * df.x2, 0)
    py = np.maximum(df.x3 - 0.2 * df.x4, 0)
    parked = rng.random(256) < 0.3
    px[parked], py[parked] = 0.0, 0.0
    df["pos_x"], df["pos_y"] = px.round(4), py.round(4)
    losses = _losses(folder, EUCLID_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(2, activation="relu", name="position"))
    m.compile(optimizer="adam", loss=losses.euclidean)
    _csv(folder, df)
    _toml(folder, target=["pos_x", "pos_y"], epochs=2, custom=True,
          comment="sqrt of a squared distance that can be 0.")
    _save(m, folder)


WHERE_LOG_LOSS = '''\
"""Poisson deviance-like loss with a "safe" log: where() keeps log(0) out of the value."""
from keras import ops


def safe_poisson(y_true, y_pred):
    log_rate = ops.where(y_pred > 0, ops.log(y_pred), 0.0)
    return ops.mean(y_pred - y_true * log_rate)
'''


@case("where-log-relu", BROKEN, "custom-code", ("where-gradient-trap",),
      "weights NaN at epoch 1 step 1 (loss finite): the relu output is exactly 0 for some rows;"
      " where() keeps log(0) out of the value but its gradient 1/0 = inf meets the zero mask")
def _where_log(folder: Path) -> None:
    keras, rng = _keras(19), _rng(19)
    df = _scaled(rng, 256, 4)
    df["calls"] = rng.poisson(np.exp(0.3 + 0.5 * df.x1))
    losses = _losses(folder, WHERE_LOG_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, activation="relu", name="rate"))
    m.compile(optimizer="adam", loss=losses.safe_poisson)
    _csv(folder, df)
    _toml(folder, target="calls", epochs=2, custom=True,
          comment="A where()-guarded log of a relu output.")
    _save(m, folder)


MAPE_LOSS = '''\
"""Mean absolute percentage error, written by hand."""
from keras import ops


def mape(y_true, y_pred):
    return 100.0 * ops.mean(ops.abs(y_true - y_pred) / ops.abs(y_true))
'''


@case("mape-zero-target", BROKEN, "custom-code", ("division-by-zero",),
      "loss inf at epoch 1 step 1 and weights NaN after it: days with zero sales make "
      "|y - p| / |y| divide by 0")
def _mape(folder: Path) -> None:
    keras, rng = _keras(20), _rng(20)
    df = _scaled(rng, 256, 4)
    sales = np.maximum(np.round(5 + 3 * df.x1 + rng.normal(0, 1, 256)), 0)
    sales[rng.random(256) < 0.1] = 0  # closed days
    df["sales"] = sales
    losses = _losses(folder, MAPE_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, name="output"))
    m.compile(optimizer="adam", loss=losses.mape)
    _csv(folder, df)
    _toml(folder, target="sales", epochs=2, custom=True,
          comment="A hand-written MAPE on a target with zeros.")
    _save(m, folder)


# ============================================================================================
# 5. data
# ============================================================================================

def _binary_frame(seed: int, n: int = 256, k: int = 4) -> pd.DataFrame:
    rng = _rng(seed)
    df = _scaled(rng, n, k)
    df["label"] = (df.x1 + 0.5 * df.x2 + rng.normal(0, 0.3, n) > 0).astype(int)
    return df


def _binary_model(keras, n_in: int, extra=()):
    L = keras.layers
    m = _mlp(keras, n_in, L.Dense(1, activation="sigmoid", name="output"), extra=extra)
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return m


@case("nan-feature-cells", BROKEN, "data", ("data-nonfinite",),
      "weights NaN at epoch 1 step 2 (the batch with the first empty cell, row 40); the logged "
      "loss is NaN from then on")
def _nan_cells(folder: Path) -> None:
    keras = _keras(21)
    df = _binary_frame(21).astype({"x3": float})
    df.loc[[40, 41, 170], "x3"] = np.nan  # empty cells in the CSV
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, comment="Three empty feature cells.")
    _save(_binary_model(keras, 4), folder)


@case("nan-target-cells", BROKEN, "data", ("data-nonfinite",),
      "loss NaN at epoch 1 step 3 (the batch holding row 70, whose target cell is 'nan')")
def _nan_target(folder: Path) -> None:
    keras, rng = _keras(22), _rng(22)
    df = _scaled(rng, 256, 4)
    y = (df.x1 - df.x3 + rng.normal(0, 0.1, 256)).round(4).astype(object)
    y[70] = "nan"
    y[200] = ""
    df["yield_pct"] = y
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, name="output"))
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="yield_pct", epochs=2, comment="Missing target cells.")
    _save(m, folder)


@case("inf-feature-cell", BROKEN, "data", ("data-nonfinite",),
      "loss NaN at epoch 1 step 5 (the batch holding row 150, whose feature cell is 'inf')")
def _inf_cell(folder: Path) -> None:
    keras = _keras(23)
    df = _binary_frame(23).astype({"x2": object})
    df.loc[150, "x2"] = "inf"  # a division by zero upstream, written as text
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, comment="One 'inf' feature cell.")
    _save(_binary_model(keras, 4), folder)


@case("unscaled-1e20-mlp", BROKEN, "data", ("data-unscaled",),
      "loss inf/NaN at epoch 1 step 1: a column of ~1e20 through Dense gives ~1e20 "
      "predictions and a squared error past float32's 3.4e38")
def _unscaled_mlp(folder: Path) -> None:
    keras, rng = _keras(24), _rng(24)
    df = _scaled(rng, 256, 3)
    df["supply_wei"] = (rng.uniform(1, 5, 256) * 1e20).round(-15)
    df["y"] = (df.x1 + rng.normal(0, 0.1, 256)).round(4)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, name="output"))
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="y", epochs=2, validation_split=0.2,
          comment="A raw token supply in wei (1e20) among scaled columns.")
    _save(m, folder)


@case("sparse-labels-off-by-one", BROKEN, "builtin-loss", ("label-out-of-range",),
      "raises InvalidArgumentError at epoch 1 step 1 on CPU: class ids 1..4 (1-based) into "
      "Dense(4, softmax) + sparse_categorical_crossentropy; id 4 is out of range")
def _off_by_one(folder: Path) -> None:
    keras, rng = _keras(25), _rng(25)
    df = _scaled(rng, 200, 4)
    df["grade"] = np.argmax(df[["x1", "x2", "x3", "x4"]].to_numpy(), 1) + 1  # 1-based
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(4, activation="softmax", name="probs"))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    _csv(folder, df)
    _toml(folder, target="grade", epochs=2, comment="1-based class ids.")
    _save(m, folder)


# ============================================================================================
# 6. ranking by effect: two real problems, one of them makes the NaN
# ============================================================================================

@case("softmax1-and-nan-cells", BROKEN, "ranking", ("data-nonfinite",),
      "weights NaN at epoch 1 step 3 (row 80's empty cell); the Dense(1, softmax) output is "
      "always 1.0 but alone trains with a finite loss")
def _softmax_nan(folder: Path) -> None:
    keras = _keras(26)
    df = _binary_frame(26).astype({"x1": float})
    df.loc[80, "x1"] = np.nan
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, activation="softmax", name="output"))
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, comment="softmax over one unit AND an empty cell.")
    _save(m, folder)


NORM_BCE_LOSS = '''\
"""Binary cross-entropy written by hand, logs unclipped."""
from keras import ops


def my_bce(y_true, y_pred):
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
'''


@case("normalized-raw-and-unclipped-log", BROKEN, "ranking", ("unclipped-log",),
      "loss NaN at epoch 10 step 2: the raw 1e6..5e7 columns are handled by an adapted "
      "Normalization layer; the sigmoid saturates on separable data and the unclipped "
      "log(1 - p) is -inf")
def _norm_log(folder: Path) -> None:
    keras, rng = _keras(27), _rng(27)
    n = 256
    income = rng.uniform(2e6, 9e6, n).round(0)
    assets = rng.uniform(1e6, 5e7, n).round(0)
    age = rng.integers(20, 70, n)
    df = pd.DataFrame({"income": income, "assets": assets, "age": age})
    df["default"] = (income < 4e6).astype(int)
    losses = _losses(folder, NORM_BCE_LOSS)
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(df[["income", "assets", "age"]].to_numpy("float32"))
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"), norm,
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer=keras.optimizers.Adam(0.2), loss=losses.my_bce)
    _csv(folder, df)
    _toml(folder, target="default", epochs=12, custom=True,
          comment="Raw columns (handled by Normalization) and an unclipped log.")
    _save(m, folder)


@case("softmax1-and-unscaled-bn", BROKEN, "ranking", ("data-unscaled",),
      "weights non-finite at epoch 1 step 1: the ~1e36 column overflows BatchNormalization's "
      "variance; the Dense(1, softmax) output is a second, silent bug")
def _softmax_bn(folder: Path) -> None:
    keras, rng = _keras(28), _rng(28)
    df = _scaled(rng, 256, 3)
    df["epoch_ns_sq"] = (rng.uniform(2.8, 2.9, 256) * 1e36).round(-30)
    df["label"] = (df.x1 > 0).astype(int)
    L = keras.layers
    m = keras.Sequential([keras.Input((4,), name="features"), L.Dense(16, name="dense"),
                          L.BatchNormalization(name="bn"), L.ReLU(name="relu"),
                          L.Dense(1, activation="softmax", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, comment="softmax over one unit AND a 1e36 column.")
    _save(m, folder)


# ============================================================================================
# 7. healthy controls
# ============================================================================================

@case("healthy-mlp-classifier", HEALTHY, "healthy", (), "finite: 3 epochs, loss 0.76 -> 0.74")
def _h_mlp(folder: Path) -> None:
    keras = _keras(31)
    _csv(folder, _binary_frame(31))
    _toml(folder, target="label", epochs=3, validation_split=0.2, comment="Healthy.")
    _save(_binary_model(keras, 4), folder)


@case("healthy-mse-regression", HEALTHY, "healthy", (), "finite: 3 epochs, loss 1.24 -> 1.06")
def _h_reg(folder: Path) -> None:
    keras, rng = _keras(32), _rng(32)
    df = _scaled(rng, 256, 5)
    df["y"] = (df.x1 - 0.5 * df.x2 + rng.normal(0, 0.2, 256)).round(4)
    L = keras.layers
    m = _mlp(keras, 5, L.Dense(1, name="output"))
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="y", epochs=3, validation_split=0.2, comment="Healthy.")
    _save(m, folder)


@case("healthy-conv1d-timeseries", HEALTHY, "healthy", (), "finite loss")
def _h_conv(folder: Path) -> None:
    keras, rng = _keras(33), _rng(33)
    df = _series(rng, 240)
    L = keras.layers
    m = keras.Sequential([keras.Input((16, 3), name="window"),
                          L.Conv1D(8, 3, activation="relu", name="conv"),
                          L.BatchNormalization(name="bn"),
                          L.GlobalAveragePooling1D(name="gap"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, window=16, validation_split=0.2, comment="Healthy.")
    _save(m, folder)


@case("healthy-gru", HEALTHY, "healthy", (), "finite loss")
def _h_rnn(folder: Path) -> None:
    keras, rng = _keras(34), _rng(34)
    df = _series(rng, 200)
    L = keras.layers
    m = keras.Sequential([keras.Input((12, 3), name="window"), L.GRU(8, name="gru"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="label", epochs=2, window=12, comment="Healthy.")
    _save(m, folder)


CLIPPED_LOSS = '''\
"""Weighted binary cross-entropy with the probabilities clipped away from 0 and 1."""
from keras import ops


def clipped_bce(y_true, y_pred):
    p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
    w = 1.0 + 2.0 * y_true
    return -ops.mean(w * (y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p)))
'''


@case("healthy-clipped-custom-loss", HEALTHY, "healthy", (),
      "finite loss even with the sigmoid saturated (same data and lr as custom-bce-unclipped)")
def _h_clipped(folder: Path) -> None:
    keras, rng = _keras(17), _rng(17)
    df = _scaled(rng, 256, 3) * 6.0
    df["label"] = (df.x1 > 0).astype(int)
    losses = _losses(folder, CLIPPED_LOSS)
    L = keras.layers
    m = _mlp(keras, 3, L.Dense(1, activation="sigmoid", name="output"))
    m.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.clipped_bce)
    _csv(folder, df)
    _toml(folder, target="label", epochs=3, custom=True, comment="Healthy: clipped logs.")
    _save(m, folder)


DOUBLE_WHERE_LOSS = '''\
"""Poisson-like loss of a relu output, with the double-where guard: the unselected branch
never sees 0."""
from keras import ops


def safe_poisson(y_true, y_pred):
    positive = y_pred > 0
    safe = ops.where(positive, y_pred, 1.0)
    log_rate = ops.where(positive, ops.log(safe), 0.0)
    return ops.mean(y_pred - y_true * log_rate)
'''


@case("healthy-double-where", HEALTHY, "healthy", (),
      "finite loss and weights (same data as where-log-relu, the gradient-safe guard)")
def _h_double_where(folder: Path) -> None:
    keras, rng = _keras(19), _rng(19)
    df = _scaled(rng, 256, 4)
    df["calls"] = rng.poisson(np.exp(0.3 + 0.5 * df.x1))
    losses = _losses(folder, DOUBLE_WHERE_LOSS)
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, activation="relu", name="rate"))
    m.compile(optimizer="adam", loss=losses.safe_poisson)
    _csv(folder, df)
    _toml(folder, target="calls", epochs=2, custom=True, comment="Healthy: double where.")
    _save(m, folder)


@case("healthy-softmax-multiclass", HEALTHY, "healthy", (), "finite loss")
def _h_softmax(folder: Path) -> None:
    keras, rng = _keras(36), _rng(36)
    df = _scaled(rng, 240, 4)
    df["grade"] = np.argmax(df[["x1", "x2", "x3", "x4"]].to_numpy(), 1)  # 0-based
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(4, activation="softmax", name="probs"))
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _csv(folder, df)
    _toml(folder, target="grade", epochs=3, validation_split=0.2, comment="Healthy.")
    _save(m, folder)


@case("healthy-normalization-raw-columns", HEALTHY, "healthy", (),
      "finite loss: the raw 1e6..5e7 columns go through an adapted Normalization layer")
def _h_norm(folder: Path) -> None:
    keras, rng = _keras(37), _rng(37)
    n = 256
    income = rng.uniform(2e6, 9e6, n).round(0)
    assets = rng.uniform(1e6, 5e7, n).round(0)
    age = rng.integers(20, 70, n)
    df = pd.DataFrame({"income": income, "assets": assets, "age": age})
    df["default"] = ((income < 4e6) ^ (rng.random(n) < 0.1)).astype(int)
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(df[["income", "assets", "age"]].to_numpy("float32"))
    m = _binary_model(keras, 3, extra=(norm,))
    _csv(folder, df)
    _toml(folder, target="default", epochs=3, comment="Healthy: Normalization on raw columns.")
    _save(m, folder)


@case("healthy-poisson-exp-output", HEALTHY, "healthy", (),
      "finite loss: poisson with an exponential output (rates always positive)")
def _h_poisson(folder: Path) -> None:
    keras, rng = _keras(38), _rng(38)
    df = _scaled(rng, 256, 4)
    df["visits"] = rng.poisson(np.exp(0.5 + 0.4 * df.x1 - 0.3 * df.x2))
    L = keras.layers
    m = _mlp(keras, 4, L.Dense(1, activation="exponential", name="rate"))
    m.compile(optimizer="adam", loss="poisson")
    _csv(folder, df)
    _toml(folder, target="visits", epochs=3, validation_split=0.2, comment="Healthy poisson.")
    _save(m, folder)


@case("healthy-softplus-poisson", HEALTHY, "healthy", (),
      "finite loss: poisson with a softplus output")
def _h_softplus(folder: Path) -> None:
    keras, rng = _keras(39), _rng(39)
    df = _scaled(rng, 200, 3)
    df["arrivals"] = rng.poisson(np.exp(1.0 + 0.3 * df.x1))
    L = keras.layers
    m = _mlp(keras, 3, L.Dense(1, activation="softplus", name="rate"))
    m.compile(optimizer="adam", loss="poisson")
    _csv(folder, df)
    _toml(folder, target="arrivals", epochs=2, comment="Healthy poisson (softplus).")
    _save(m, folder)


@case("healthy-mixed-float16-scaled", HEALTHY, "healthy", (),
      "finite loss: mixed_float16 on scaled inputs (the float16-overflow case's model, scaled)")
def _h_f16(folder: Path) -> None:
    keras, rng = _keras(9), _rng(9)
    df = _scaled(rng, 240, 3)
    df["temp_z"] = (df.x1 + 0.5 * df.x3 + rng.normal(0, 0.1, 240)).round(4)
    keras.config.set_dtype_policy("mixed_float16")
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(16, activation="relu", name="hidden2"),
                          L.Dense(1, name="output", dtype="float32")])
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="temp_z", epochs=2, comment="Healthy mixed precision.")
    _save(m, folder)


def build_all(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build every case (or the named ones) under root/<name>/; name -> nandoc.toml."""
    out = {}
    for c in CASES:
        if names is None or c.name in names:
            out[c.name] = c.build(Path(root) / c.name)
    return out
