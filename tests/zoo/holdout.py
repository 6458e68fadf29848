"""The held-out NaN set: "my loss is NaN" cases the engine was never tuned on.

Same shape as `tests/zoo/cases.py` (and its helpers), but different model families, losses,
data shapes and mechanisms, rebuilt from first principles after the kind of reports people post
(a hand-written logsumexp at a low temperature, a Gaussian NLL with a relu variance, a Tweedie
deviance with fractional powers, a cosine loss on all-zero target rows, a batch-standardising
layer, Fisher's z via arctanh, a hand-written log-cosh, a loss normalised by the positives in
the batch, a Python `if` in a Huber loss, RMSprop and an Embedding at huge rates, token ids past
the vocabulary, nanosecond timestamps, inf ratio targets, NaN only in the validation rows, a
hand-written softmax layer, a log-returns layer on prices with zeros) plus healthy controls that
look risky but are fine.

`expect` (the rank-1 causes a careful engineer would accept) was written from the mechanism
before nandoc was run on any case and is never changed after seeing its answer. `why` records
what plain `model.fit` did on the built files (the toml's batch size and epochs, shuffle=False,
validation on the last rows), measured with Keras 3.15 / TensorFlow 2.21 on CPU by
`python bench/holdout.py --verify --no-nandoc`.

Deterministic: every builder seeds numpy and Keras. Nothing is trained here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tests.zoo.cases import (
    BROKEN,
    HEALTHY,
    Case,
    _csv,
    _keras,
    _losses,
    _rng,
    _save,
    _scaled,
    _toml,
)

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


def _onehot(labels: np.ndarray, k: int, prefix: str = "c") -> pd.DataFrame:
    return pd.DataFrame({f"{prefix}{i}": (labels == i).astype(int) for i in range(k)})


# ============================================================================================
# custom losses
# ============================================================================================

TEMPERED_XENT = '''\
"""Temperature-scaled cross-entropy (as in contrastive recipes), log-sum-exp by hand."""
from keras import ops

TEMPERATURE = 0.02


def tempered_xent(y_true, y_pred):
    z = y_pred / TEMPERATURE
    lse = ops.log(ops.sum(ops.exp(z), axis=-1))
    return ops.mean(lse - ops.sum(y_true * z, axis=-1))
'''

TEMPERED_XENT_STABLE = '''\
"""Temperature-scaled cross-entropy, log-sum-exp with the max subtracted."""
from keras import ops

TEMPERATURE = 0.02


def tempered_xent(y_true, y_pred):
    z = y_pred / TEMPERATURE
    m = ops.max(z, axis=-1, keepdims=True)
    lse = ops.squeeze(m, -1) + ops.log(ops.sum(ops.exp(z - m), axis=-1))
    return ops.mean(lse - ops.sum(y_true * z, axis=-1))
'''


def _tempered(folder: Path, source: str, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 256, 6)
    w = rng.normal(size=(6, 4))
    labels = np.argmax(df.to_numpy() @ w, 1)
    df = pd.concat([df, _onehot(labels, 4)], axis=1)
    losses = _losses(folder, source)
    L = keras.layers
    m = keras.Sequential([keras.Input((6,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(4, name="scores")])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.tempered_xent)
    _csv(folder, df)
    _toml(folder, target=["c0", "c1", "c2", "c3"], epochs=3, validation_split=0.2, custom=True,
          comment="Cross-entropy at temperature 0.02, log-sum-exp written by hand.")
    _save(m, folder)


@case("tempered-xent-logsumexp", BROKEN, "custom-code", ("exp-overflow",),
      "loss inf and weights NaN at epoch 1 step 1: scores / 0.02 pass 88 for some rows, "
      "exp() is inf, log(inf) is inf and its gradient inf / inf is NaN")
def _tempered_broken(folder: Path) -> None:
    _tempered(folder, TEMPERED_XENT, 101)


@case("healthy-tempered-xent-stable", HEALTHY, "healthy", (),
      "finite loss: the same loss, data and model with the max subtracted before exp()")
def _tempered_healthy(folder: Path) -> None:
    _tempered(folder, TEMPERED_XENT_STABLE, 101)


GAUSSIAN_NLL = '''\
"""Heteroscedastic regression: predict a mean and a variance, minimise the Gaussian NLL."""
from keras import ops


def gaussian_nll(y_true, y_pred):
    mu = y_pred[:, 0:1]
    var = y_pred[:, 1:2]
    return ops.mean(0.5 * ops.log(var) + 0.5 * ops.square(y_true - mu) / var)
'''

GAUSSIAN_NLL_SAFE = '''\
"""Heteroscedastic regression: Gaussian NLL with a softplus variance and an epsilon."""
from keras import ops


def gaussian_nll(y_true, y_pred):
    mu = y_pred[:, 0:1]
    var = y_pred[:, 1:2] + 1e-6
    return ops.mean(0.5 * ops.log(var) + 0.5 * ops.square(y_true - mu) / var)
'''


def _gaussian(folder: Path, source: str, var_activation: str, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 240, 3, prefix="f")
    df["yield_t"] = (df.f1 - 0.5 * df.f2 + rng.normal(0, 1, 240) * (0.2 + np.abs(df.f3))
                     ).round(4)
    losses = _losses(folder, source)
    L = keras.layers
    inp = keras.Input((3,), name="features")
    h = L.Dense(16, activation="relu", name="hidden")(inp)
    mu = L.Dense(1, name="mean")(h)
    var = L.Dense(1, activation=var_activation, name="variance")(h)
    m = keras.Model(inp, L.Concatenate(name="mean_var")([mu, var]))
    m.compile(optimizer="adam", loss=losses.gaussian_nll)
    _csv(folder, df)
    _toml(folder, target="yield_t", epochs=3, validation_split=0.2, custom=True,
          comment=f"Gaussian NLL, variance head with activation={var_activation}.")
    _save(m, folder)


@case("gaussian-nll-relu-variance", BROKEN, "custom-code",
      ("division-by-zero", "unclipped-log"),
      "loss NaN at epoch 1 step 1: the relu variance head is exactly 0 for some rows; "
      "log(0) = -inf and err^2 / 0 = inf")
def _gaussian_broken(folder: Path) -> None:
    _gaussian(folder, GAUSSIAN_NLL, "relu", 102)


@case("healthy-gaussian-nll-softplus", HEALTHY, "healthy", (),
      "finite loss: the same model with a softplus variance head and + 1e-6 in the loss")
def _gaussian_healthy(folder: Path) -> None:
    _gaussian(folder, GAUSSIAN_NLL_SAFE, "softplus", 102)


TWEEDIE = '''\
"""Tweedie deviance (power 1.5) for insurance claim amounts, written by hand."""
from keras import ops

P = 1.5


def tweedie_deviance(y_true, y_pred):
    a = y_true * ops.power(y_pred, 1.0 - P) / (1.0 - P)
    b = ops.power(y_pred, 2.0 - P) / (2.0 - P)
    return ops.mean(b - a)
'''


@case("tweedie-power-linear", BROKEN, "custom-code", ("domain-error", "sqrt-at-zero"),
      "loss NaN at epoch 1 step 1: the linear output is negative for some rows and "
      "power(mu, -0.5) / power(mu, 0.5) of a negative number is NaN")
def _tweedie(folder: Path) -> None:
    keras, rng = _keras(103), _rng(103)
    df = _scaled(rng, 256, 5, prefix="risk")
    has_claim = rng.random(256) < 0.3
    df["claim_k"] = np.where(has_claim, rng.gamma(2.0, np.exp(0.3 * df.risk1)), 0.0).round(3)
    losses = _losses(folder, TWEEDIE)
    L = keras.layers
    m = keras.Sequential([keras.Input((5,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, name="mu")])  # linear: the mean can go negative
    m.compile(optimizer="adam", loss=losses.tweedie_deviance)
    _csv(folder, df)
    _toml(folder, target="claim_k", epochs=3, validation_split=0.2, custom=True,
          comment="Hand-written Tweedie deviance on a linear output.")
    _save(m, folder)


COSINE = '''\
"""Regress onto item embeddings with a cosine loss."""
from keras import ops


def cosine_loss(y_true, y_pred):
    dot = ops.sum(y_true * y_pred, axis=-1)
    norm_t = ops.sqrt(ops.sum(ops.square(y_true), axis=-1))
    norm_p = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1))
    return ops.mean(1.0 - dot / (norm_t * norm_p))
'''

COSINE_EPS = '''\
"""Regress onto item embeddings with a cosine loss (epsilon in the norms)."""
from keras import ops


def cosine_loss(y_true, y_pred):
    dot = ops.sum(y_true * y_pred, axis=-1)
    norm_t = ops.sqrt(ops.sum(ops.square(y_true), axis=-1) + 1e-12)
    norm_p = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1) + 1e-12)
    return ops.mean(1.0 - dot / (norm_t * norm_p + 1e-8))
'''


def _cosine(folder: Path, source: str, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 256, 5, prefix="u")
    emb = df.to_numpy() @ rng.normal(size=(5, 4))
    cold = rng.random(256) < 0.08  # cold-start items: no embedding yet, stored as zeros
    cold[5] = True
    emb[cold] = 0.0
    for i in range(4):
        df[f"e{i}"] = emb[:, i].round(4)
    losses = _losses(folder, source)
    L = keras.layers
    m = keras.Sequential([keras.Input((5,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(4, name="embedding")])
    m.compile(optimizer="adam", loss=losses.cosine_loss)
    _csv(folder, df)
    _toml(folder, target=["e0", "e1", "e2", "e3"], epochs=3, custom=True,
          comment="Cosine loss onto item embeddings; cold-start rows are all zeros.")
    _save(m, folder)


@case("cosine-zero-target-rows", BROKEN, "custom-code", ("division-by-zero",),
      "loss NaN at epoch 1 step 1: cold-start rows have an all-zero target embedding, its "
      "norm is 0 and dot / (0 * |p|) = 0 / 0")
def _cosine_broken(folder: Path) -> None:
    _cosine(folder, COSINE, 104)


@case("healthy-cosine-eps", HEALTHY, "healthy", (),
      "finite loss: the same data with epsilons in the norms and the denominator")
def _cosine_healthy(folder: Path) -> None:
    _cosine(folder, COSINE_EPS, 104)


BATCH_STANDARDIZE = '''\
"""Standardise each feature over the batch (a BatchNorm by hand, no epsilon)."""
import keras
from keras import ops


class BatchStandardize(keras.layers.Layer):
    def call(self, x):
        mean = ops.mean(x, axis=0, keepdims=True)
        std = ops.std(x, axis=0, keepdims=True)
        return (x - mean) / std
'''


@case("batch-standardize-constant-stretch", BROKEN, "custom-code",
      ("division-by-zero", "sqrt-at-zero"),
      "weights non-finite at epoch 1 step 4 (the logged loss stays finite): the line speed "
      "is constant over rows 96..159, those batches have std 0 in the custom layer and "
      "(x - mean) / std = 0 / 0")
def _batch_std(folder: Path) -> None:
    keras, rng = _keras(105), _rng(105)
    n = 256
    speed = rng.normal(1.2, 0.3, n).round(3)
    speed[96:160] = 1.5  # the line ran at a fixed set point for two whole batches
    temp = rng.normal(60, 5, n).round(2)
    vib = rng.normal(0, 1, n).round(4)
    df = pd.DataFrame({"line_speed": speed, "oven_temp": temp, "vibration": vib})
    df["defect"] = ((speed - 1.2) + 0.05 * (temp - 60) + rng.normal(0, 0.2, n) > 0.2
                    ).astype(int)
    losses = _losses(folder, BATCH_STANDARDIZE)
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          losses.BatchStandardize(name="standardize"),
                          L.Dense(8, activation="relu", name="hidden"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="defect", epochs=2, custom=True,
          comment="A custom layer standardising each feature over the batch.")
    _save(m, folder)


FISHER_Z = '''\
"""Regress correlations in Fisher z space: mse(arctanh(y_true), arctanh(y_pred))."""
from keras import ops


def fisher_z_mse(y_true, y_pred):
    return ops.mean(ops.square(ops.arctanh(y_true) - ops.arctanh(y_pred)))
'''

FISHER_Z_CLIPPED = '''\
"""Regress correlations in Fisher z space, both sides clipped inside (-1, 1)."""
from keras import ops


def fisher_z_mse(y_true, y_pred):
    t = ops.clip(y_true, -0.999, 0.999)
    p = ops.clip(y_pred, -0.999, 0.999)
    return ops.mean(ops.square(ops.arctanh(t) - ops.arctanh(p)))
'''


def _fisher(folder: Path, source: str, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 240, 4, prefix="g")
    r = np.tanh(0.8 * df.g1 - 0.4 * df.g2 + rng.normal(0, 0.2, 240))
    r[[3, 17, 90, 150]] = [1.0, -1.0, 1.0, 1.0]  # duplicated probes: perfect correlation
    df["corr"] = np.round(r, 4)
    losses = _losses(folder, source)
    L = keras.layers
    m = keras.Sequential([keras.Input((4,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, activation="tanh", name="corr")])
    m.compile(optimizer="adam", loss=losses.fisher_z_mse)
    _csv(folder, df)
    _toml(folder, target="corr", epochs=3, validation_split=0.2, custom=True,
          comment="Correlations regressed through arctanh (Fisher z).")
    _save(m, folder)


@case("fisher-z-arctanh", BROKEN, "custom-code", ("domain-error", "label-out-of-range"),
      "loss inf and weights NaN at epoch 1 step 1 (row 3, a correlation of exactly 1.0): "
      "arctanh(1) = inf")
def _fisher_broken(folder: Path) -> None:
    _fisher(folder, FISHER_Z, 106)


@case("healthy-fisher-z-clipped", HEALTHY, "healthy", (),
      "finite loss: the same data and tanh output, both sides clipped to +-0.999 before arctanh")
def _fisher_healthy(folder: Path) -> None:
    _fisher(folder, FISHER_Z_CLIPPED, 106)


LOG_COSH = '''\
"""log-cosh regression loss, written from its definition."""
from keras import ops


def log_cosh(y_true, y_pred):
    return ops.mean(ops.log(ops.cosh(y_pred - y_true)))
'''


@case("logcosh-by-hand", BROKEN, "custom-code", ("exp-overflow", "data-unscaled"),
      "loss inf at epoch 1 step 1: house prices in k$ (120..900) against an untrained output "
      "near 0; cosh(>89) overflows to inf and the gradient tanh = inf / inf is NaN")
def _logcosh(folder: Path) -> None:
    keras, rng = _keras(107), _rng(107)
    df = _scaled(rng, 256, 5, prefix="h")
    df["price_k"] = (450 + 120 * df.h1 + 60 * df.h2 + rng.normal(0, 30, 256)).clip(120, 900
                                                                                    ).round(1)
    losses = _losses(folder, LOG_COSH)
    L = keras.layers
    m = keras.Sequential([keras.Input((5,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, name="price")])
    m.compile(optimizer="adam", loss=losses.log_cosh)
    _csv(folder, df)
    _toml(folder, target="price_k", epochs=3, validation_split=0.2, custom=True,
          comment="A hand-written log-cosh on prices in thousands.")
    _save(m, folder)


POS_NORMALISED = '''\
"""Binary cross-entropy summed over the batch and normalised by the number of positives."""
from keras import ops


def pos_normalised_bce(y_true, y_pred):
    p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    bce = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
    return ops.sum(bce) / ops.sum(y_true)
'''


@case("positives-normalised-bce", BROKEN, "custom-code", ("division-by-zero",),
      "loss inf and weights NaN at epoch 1 step 3 (rows 64..95, the first batch with no "
      "positive row: sum(y_true) = 0)")
def _pos_norm(folder: Path) -> None:
    keras, rng = _keras(108), _rng(108)
    df = _scaled(rng, 320, 4, prefix="t")
    score = df.t1 + 0.5 * df.t2
    fraud = (score > np.quantile(score, 0.96)).astype(int)
    df["fraud"] = fraud
    losses = _losses(folder, POS_NORMALISED)
    L = keras.layers
    m = keras.Sequential([keras.Input((4,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss=losses.pos_normalised_bce)
    _csv(folder, df)
    _toml(folder, target="fraud", epochs=2, custom=True,
          comment="BCE normalised by the positives in the batch; 4% positives.")
    _save(m, folder)


HUBER_IF = '''\
"""Huber loss written from the textbook definition."""
from keras import ops

DELTA = 1.0


def huber(y_true, y_pred):
    err = ops.abs(y_true - y_pred)
    if err <= DELTA:
        return ops.mean(0.5 * ops.square(err))
    return ops.mean(DELTA * (err - 0.5 * DELTA))
'''

HUBER_WHERE = '''\
"""Huber loss written with an element-wise where (both branches finite)."""
from keras import ops

DELTA = 1.0


def huber(y_true, y_pred):
    err = ops.abs(y_true - y_pred)
    return ops.mean(ops.where(err <= DELTA, 0.5 * ops.square(err),
                              DELTA * (err - 0.5 * DELTA)))
'''


def _huber(folder: Path, source: str, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 256, 4, prefix="q")
    noise = rng.standard_t(2, 256)  # heavy tails: why Huber was chosen
    df["delay_min"] = (2 * df.q1 - df.q3 + noise).round(3)
    losses = _losses(folder, source)
    L = keras.layers
    m = keras.Sequential([keras.Input((4,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, name="delay")])
    m.compile(optimizer="adam", loss=losses.huber)
    _csv(folder, df)
    _toml(folder, target="delay_min", epochs=3, validation_split=0.2, custom=True,
          comment="A hand-written Huber loss.")
    _save(m, folder)


@case("huber-python-if", BROKEN, "custom-code", ("tensor-python-branch",),
      "raises at epoch 1 step 1: `if err <= DELTA` on a (batch, 1) tensor inside the compiled "
      "train step")
def _huber_broken(folder: Path) -> None:
    _huber(folder, HUBER_IF, 109)


@case("healthy-huber-where", HEALTHY, "healthy", (),
      "finite loss: the same Huber loss with an element-wise where (both branches finite)")
def _huber_healthy(folder: Path) -> None:
    _huber(folder, HUBER_WHERE, 109)


# ============================================================================================
# custom layers
# ============================================================================================

NAIVE_SOFTMAX = '''\
"""A softmax output layer written from its definition."""
import keras
from keras import ops


class NaiveSoftmax(keras.layers.Layer):
    def call(self, x):
        e = ops.exp(x)
        return e / ops.sum(e, axis=-1, keepdims=True)
'''


@case("naive-softmax-raw-scores", BROKEN, "custom-code", ("exp-overflow", "data-unscaled"),
      "loss NaN and weights NaN at epoch 1 step 1: raw section scores (200..800) give logits "
      "past 88; exp() is inf and inf / inf = NaN in the hand-written softmax")
def _naive_softmax(folder: Path) -> None:
    keras, rng = _keras(110), _rng(110)
    n = 240
    scores = rng.uniform(200, 800, size=(n, 5)).round(-1)  # test section scores, 200..800
    df = pd.DataFrame(scores, columns=["math", "physics", "chemistry", "history", "art"])
    track = np.argmax(np.stack([scores[:, 0] + scores[:, 1], scores[:, 2] + scores[:, 1],
                                scores[:, 3] + scores[:, 4]], 1), 1)
    df["track"] = track
    losses = _losses(folder, NAIVE_SOFTMAX)
    L = keras.layers
    m = keras.Sequential([keras.Input((5,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(3, name="logits"),
                          losses.NaiveSoftmax(name="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    _csv(folder, df)
    _toml(folder, target="track", epochs=3, validation_split=0.2, custom=True,
          comment="Raw section scores (200..800) into a hand-written softmax.")
    _save(m, folder)


LOG_RETURNS = '''\
"""Turn each window of prices into log returns, log(p_t / p_{t-1})."""
import keras
from keras import ops


class LogReturns(keras.layers.Layer):
    def call(self, x):
        return ops.log(x[:, 1:, :] / x[:, :-1, :])
'''


@case("log-returns-zero-price", BROKEN, "custom-code", ("division-by-zero", "unclipped-log"),
      "loss NaN at epoch 1 step 1: the feed recorded 0.0 for halted trading (rows 41..43); "
      "p / 0 = inf and log(0 / p) = -inf in the custom layer meet in the Conv1D")
def _log_returns(folder: Path) -> None:
    keras, rng = _keras(111), _rng(111)
    n = 260
    a = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    b = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    a[41:44] = 0.0  # trading halted: the feed wrote zeros
    up = np.r_[(np.diff(b) > 0).astype(int), 0]
    df = pd.DataFrame({"price_a": a.round(3), "price_b": b.round(3), "b_up_next": up})
    losses = _losses(folder, LOG_RETURNS)
    L = keras.layers
    m = keras.Sequential([keras.Input((12, 2), name="window"),
                          losses.LogReturns(name="log_returns"),
                          L.Conv1D(8, 3, activation="relu", name="conv"),
                          L.GlobalAveragePooling1D(name="gap"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="b_up_next", epochs=2, window=12, validation_split=0.2, custom=True,
          comment="Windows of 12 prices turned into log returns by a custom layer.")
    _save(m, folder)


# ============================================================================================
# the optimizer
# ============================================================================================

def _rmsprop(folder: Path, lr: float, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    df = _scaled(rng, 256, 6, prefix="m")
    df["load_kw"] = (df.m1 * df.m2 + 0.5 * df.m3 + rng.normal(0, 0.1, 256)).round(4)
    L = keras.layers
    m = keras.Sequential([keras.Input((6,), name="features"),
                          *[L.Dense(16, activation="relu", name=f"h{i}") for i in range(1, 5)],
                          L.Dense(1, name="output")])
    m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=lr), loss="mse")
    _csv(folder, df)
    _toml(folder, target="load_kw", epochs=3, validation_split=0.2,
          comment=f"RMSprop at learning_rate={lr}.")
    _save(m, folder)


@case("rmsprop-huge-lr", BROKEN, "optimizer", ("learning-rate-too-high", "exploding-gradients"),
      "loss inf at epoch 1 step 2: RMSprop(learning_rate=1e3), a typo for 1e-3, moves every "
      "weight by ~3e3 in the first step; 4 relu layers multiply that into an overflowing MSE")
def _rmsprop_broken(folder: Path) -> None:
    _rmsprop(folder, 1e3, 112)


@case("healthy-rmsprop-sane-lr", HEALTHY, "healthy", (),
      "finite loss: the same model and data with RMSprop(learning_rate=1e-3)")
def _rmsprop_healthy(folder: Path) -> None:
    _rmsprop(folder, 1e-3, 112)


def _embedding(folder: Path, optimizer: str, lr: float, seed: int) -> None:
    keras, rng = _keras(seed), _rng(seed)
    n = 300
    store = rng.integers(0, 40, n)
    effect = rng.normal(0, 1, 40)
    df = pd.DataFrame({"store_id": store})
    df["demand_z"] = (effect[store] + rng.normal(0, 0.3, n)).round(4)
    L = keras.layers
    m = keras.Sequential([keras.Input((1,), name="store"),
                          L.Embedding(40, 8, name="store_embedding"),
                          L.Flatten(name="flat"),
                          L.Dense(8, activation="relu", name="hidden"),
                          L.Dense(1, name="demand")])
    opt = (keras.optimizers.SGD(learning_rate=lr) if optimizer == "sgd"
           else keras.optimizers.Adam(learning_rate=lr))
    m.compile(optimizer=opt, loss="mse")
    _csv(folder, df)
    _toml(folder, target="demand_z", epochs=3, validation_split=0.2,
          comment=f"A store-id Embedding, {optimizer} at learning_rate={lr}.")
    _save(m, folder)


@case("embedding-sgd-huge-lr", BROKEN, "optimizer",
      ("learning-rate-too-high", "exploding-gradients"),
      "loss inf and weights NaN at epoch 1 step 4: SGD(learning_rate=30) on a store-id "
      "Embedding regression diverges (Adam at 1e-2 trains)")
def _embedding_broken(folder: Path) -> None:
    _embedding(folder, "sgd", 30.0, 113)


@case("healthy-embedding-adam", HEALTHY, "healthy", (),
      "finite loss: the same Embedding model and data with Adam(learning_rate=1e-2)")
def _embedding_healthy(folder: Path) -> None:
    _embedding(folder, "adam", 1e-2, 113)


# ============================================================================================
# data
# ============================================================================================

@case("token-id-past-vocab", BROKEN, "data", ("input-index-out-of-range",),
      "raises InvalidArgumentError (GatherV2 in 'words') on CPU: token ids up to 129 in rows "
      "140..149 into Embedding(input_dim=120); on a GPU the lookup returns zeros silently")
def _token_ids(folder: Path) -> None:
    keras, rng = _keras(114), _rng(114)
    n = 256
    toks = rng.integers(1, 120, size=(n, 6))
    toks[140:150, 2] = rng.integers(120, 130, 10)  # ids of words added after the vocab was built
    df = pd.DataFrame(toks, columns=[f"tok{i}" for i in range(6)])
    df["positive"] = ((toks % 7 == 0).sum(1) > 0).astype(int)
    L = keras.layers
    m = keras.Sequential([keras.Input((6,), name="tokens"),
                          L.Embedding(120, 8, name="words"),
                          L.GlobalAveragePooling1D(name="pool"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="positive", epochs=2, comment="Token ids into an Embedding(120).")
    _save(m, folder)


@case("timestamp-ns-feature", BROKEN, "data", ("data-unscaled",),
      "weights non-finite at epoch 1 step 2 (the logged loss still finite): timestamp_ns "
      "(~1.7e18) through Dense makes the first update overflow float32")
def _timestamp_ns(folder: Path) -> None:
    keras, rng = _keras(115), _rng(115)
    n = 256
    ts = (1_717_000_000_000_000_000 + np.arange(n) * 900_000_000_000).astype(np.int64)
    temp = rng.normal(18, 6, n).round(2)
    occupancy = rng.integers(0, 40, n)
    df = pd.DataFrame({"timestamp_ns": ts, "outdoor_temp": temp, "occupancy": occupancy})
    df["heating_kw"] = (0.5 * (20 - temp) + 0.1 * occupancy + rng.normal(0, 0.5, n)).round(3)
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, name="heating")])
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="heating_kw", epochs=3, validation_split=0.2,
          comment="A nanosecond timestamp left in as a feature.")
    _save(m, folder)


@case("inf-ratio-target", BROKEN, "data", ("data-nonfinite",),
      "loss inf at epoch 1 step 3 (rows 70 and 71: cost per unit computed upstream with "
      "units = 0 is 'inf' in the CSV), weights NaN after the step")
def _inf_ratio(folder: Path) -> None:
    keras, rng = _keras(116), _rng(116)
    n = 256
    units = rng.integers(1, 50, n).astype(float)
    units[[70, 71, 201]] = 0.0
    cost = rng.uniform(10, 20, n) * np.maximum(units, 1)
    df = _scaled(rng, n, 3, prefix="p")
    with np.errstate(divide="ignore"):
        ratio = np.where(units > 0, cost / units, np.inf)  # pandas' division gives inf too
    df["cost_per_unit_z"] = np.where(np.isfinite(ratio), (ratio - 15) / 3, np.inf).round(4)
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(16, activation="relu", name="hidden"),
                          L.Dense(1, name="output")])
    m.compile(optimizer="adam", loss="mse")
    _csv(folder, df)
    _toml(folder, target="cost_per_unit_z", epochs=2,
          comment="A ratio target with inf where the denominator was 0.")
    _save(m, folder)


@case("nan-only-in-validation", BROKEN, "data", ("data-nonfinite",),
      "training loss finite, val_loss NaN at the end of epoch 1: the last week's export (the "
      "validation rows) has empty humidity cells")
def _nan_val(folder: Path) -> None:
    keras, rng = _keras(117), _rng(117)
    n = 250
    df = pd.DataFrame({"temp_z": rng.normal(size=n).round(4),
                       "humidity_z": rng.normal(size=n).round(4),
                       "wind_z": rng.normal(size=n).round(4)})
    df["rain"] = (df.humidity_z - 0.5 * df.temp_z + rng.normal(0, 0.5, n) > 0.3).astype(int)
    df["humidity_z"] = df["humidity_z"].astype(float)
    df.loc[[212, 213, 230, 231, 232, 247], "humidity_z"] = np.nan  # validation rows only
    L = keras.layers
    m = keras.Sequential([keras.Input((3,), name="features"),
                          L.Dense(8, activation="tanh", name="hidden"),
                          L.Dense(1, activation="sigmoid", name="output")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    _csv(folder, df)
    _toml(folder, target="rain", epochs=2, validation_split=0.2,
          comment="Empty cells only in the last 20% (the validation rows).")
    _save(m, folder)


def build_all(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build every held-out case (or the named ones) under root/<name>/; name -> nandoc.toml."""
    out = {}
    for c in CASES:
        if names is None or c.name in names:
            out[c.name] = c.build(Path(root) / c.name)
    return out
