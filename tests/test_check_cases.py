"""Every check, case by case (sqlfluff/pylint style): one table, one runner.

Each row of CASES names a check, whether it must fire or stay silent, and the scenario it runs
on: tiny real Keras models and real CSV files, built from first principles and run through the
real engine. A "fires" case names the cause(s) the check must emit; a "silent" case must see the
check run (not skip it as not applicable, not crash) and emit nothing at warning or above.

Adding a check: add a fires row and a silent row (and a scenario when none fits);
tests/test_registry.py fails until both exist and the fires rows cover every declared cause.
A check that needs training (replay) names `driver="replay"` on its rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import numpy as np
import pytest

from tests.conftest import healthy_rows, write_csv


def _run(cfg):
    """The check driver: every case with driver "check" goes through here."""
    from nandoc.drivers.check import check

    return check(cfg)


def _replay(cfg):
    """The training driver, for the checks that need a replay of the first steps."""
    from nandoc.drivers.replay import replay

    return replay(cfg)


def _driver(name: str) -> Callable:
    return {"check": _run, "replay": _replay}[name]


# --- the case table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    check: str  # the check id
    expect: str  # "fires" or "silent"
    scenario: str  # a key of SCENARIOS
    causes: tuple[str, ...] = ()  # fires: each must be emitted by the check
    severity: str | None = None  # fires: the severity each expected cause is emitted at
    variant: str = ""  # tells apart two cases of one check and expectation
    driver: str = "check"  # a key of _driver

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.check, self.expect, self.variant) if p)


def fires(check: str, scenario: str, *causes: str, severity: str | None = None,
          variant: str = "", driver: str = "check") -> Case:
    return Case(check, "fires", scenario, causes, severity, variant, driver)


def silent(check: str, scenario: str, variant: str = "", driver: str = "check") -> Case:
    return Case(check, "silent", scenario, variant=variant, driver=driver)


SUSPECTS = ("unclipped-log", "division-by-zero", "sqrt-at-zero", "exp-overflow")

CASES = [
    # data
    fires("data-nonfinite", "nonfinite-cells", "data-nonfinite", severity="error"),
    silent("data-nonfinite", "healthy"),
    fires("data-unscaled", "large-feature", "data-unscaled", severity="warning"),
    silent("data-unscaled", "healthy"),
    silent("data-unscaled", "normalized-large-feature", variant="normalized-by-the-model"),
    # token ids up to 31,999 into an Embedding are vocabulary positions, not magnitudes
    silent("data-unscaled", "large-token-ids", variant="ids-into-an-embedding"),
    fires("empty-validation", "short-validation-windows", "empty-validation", severity="error"),
    silent("empty-validation", "validation-windows-fit"),
    fires("label-out-of-range", "labels-outside-0-1", "label-out-of-range", severity="error"),
    silent("label-out-of-range", "class-ids-in-range"),
    # model structure
    fires("softmax-single-unit", "softmax-one-unit", "softmax-single-unit", severity="error"),
    silent("softmax-single-unit", "class-ids-in-range"),
    fires("activation-loss-mismatch", "linear-bce-calm", "activation-loss-mismatch",
          severity="error"),
    silent("activation-loss-mismatch", "healthy"),
    fires("zero-variance-normalization", "normalization-constant-feature",
          "zero-variance-normalization", severity="error"),
    silent("zero-variance-normalization", "normalized-large-feature"),
    # the static read of custom-object source (functions the model does not use)
    fires("source-python-branch", "suspect-source", "tensor-python-branch", severity="error"),
    silent("source-python-branch", "guarded-source"),
    fires("source-where-trap", "suspect-source", "where-gradient-trap", severity="warning"),
    silent("source-where-trap", "guarded-source"),
    fires("source-unsafe-math", "suspect-source", *SUSPECTS, severity="warning"),
    silent("source-unsafe-math", "guarded-source"),
    # custom losses and metrics, evaluated op by op
    fires("loss-probe", "loss-where-trap", "where-gradient-trap", severity="error",
          variant="where-trap"),
    fires("loss-probe", "loss-unclipped-log", "unclipped-log", severity="error",
          variant="unclipped-log"),
    fires("loss-probe", "loss-python-branch", "tensor-python-branch", "unclipped-log",
          severity="error", variant="python-branch"),
    fires("loss-probe", "loss-division", "division-by-zero", severity="error",
          variant="division"),
    fires("loss-probe", "loss-sqrt", "sqrt-at-zero", severity="error", variant="sqrt"),
    fires("loss-probe", "loss-exp", "exp-overflow", severity="error", variant="exp"),
    fires("loss-probe", "loss-acos", "domain-error", severity="error", variant="acos"),
    fires("input-index-out-of-range", "token-id-past-vocab", "input-index-out-of-range",
          severity="error"),
    silent("input-index-out-of-range", "token-ids-in-vocab"),
    fires("data-unscaled-pixels", "images-raw", "data-unscaled", severity="warning"),
    silent("data-unscaled-pixels", "images-rescaled"),
    fires("optimizer-epsilon-underflow", "float16-adam-tiny-epsilon", "division-by-zero",
          severity="error"),
    silent("optimizer-epsilon-underflow", "float16-adam-epsilon"),
    fires("loss-batch-search", "batch-nmse", "division-by-zero", severity="error",
          variant="variance"),
    fires("loss-batch-search", "batch-log-std", "unclipped-log", severity="error",
          variant="log-std"),
    silent("loss-batch-search", "batch-nmse-eps"),
    fires("loss-probe", "builtin-poisson-linear", "activation-loss-mismatch", severity="error",
          variant="builtin"),
    silent("loss-probe", "builtin-poisson-softplus", variant="builtin"),
    silent("loss-probe", "loss-clipped-log"),
    silent("loss-probe", "loss-double-where", variant="double-where"),
    fires("metric-probe", "metrics-suspect", *SUSPECTS, "where-gradient-trap",
          "tensor-python-branch", severity="warning"),
    silent("metric-probe", "metrics-guarded"),
    # real batches through the model
    fires("step-custom-layer-ops", "layers-suspect", *SUSPECTS, severity="error"),
    silent("step-custom-layer-ops", "layers-guarded"),
    fires("step-float16-overflow", "float16-overflow", "float16-overflow", severity="error"),
    silent("step-float16-overflow", "float16-headroom"),
    fires("step-activation-loss-mismatch", "linear-bce-wide", "activation-loss-mismatch",
          severity="error"),
    silent("step-activation-loss-mismatch", "healthy"),
    silent("step-activation-loss-mismatch", "linear-bce-calm", variant="outputs-in-0-1"),
    fires("step-data-unscaled", "overflowing-feature", "data-unscaled", severity="error"),
    silent("step-data-unscaled", "normalized-large-feature"),
    # training: what a replay of the first steps shows
    fires("train-exploding-gradients", "replay-diverging", "exploding-gradients",
          severity="error", driver="replay"),
    silent("train-exploding-gradients", "replay-healthy", driver="replay"),
    fires("train-learning-rate-too-high", "replay-diverging", "learning-rate-too-high",
          severity="error", driver="replay"),
    silent("train-learning-rate-too-high", "replay-healthy", driver="replay"),
    # check's burst sees the same first steps
    fires("train-learning-rate-too-high", "replay-diverging", "learning-rate-too-high",
          severity="error", variant="burst"),
    fires("train-exploding-gradients", "replay-diverging", "exploding-gradients",
          variant="burst"),
    silent("train-learning-rate-too-high", "replay-healthy", variant="burst"),
]


# --- custom-object sources ----------------------------------------------------------------------

SOURCES = {
    # Functions no model uses: only the static read sees them.
    "suspects.py": """
        from keras import ops


        def sparse_penalty(y_true, y_pred):
            if y_true != 0:
                return -10 * ops.sum(y_true * ops.log(y_pred))
            return -ops.sum((1 - y_true) * ops.log(1 - y_pred))


        def f(x):
            return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)


        def distance(a, b):
            return ops.mean(ops.sqrt(ops.sum(ops.square(a - b), axis=-1)))


        def ratio(y_true, y_pred):
            return ops.mean(y_true / y_pred)


        def growth(y_true, y_pred):
            return ops.mean(ops.exp(y_pred - y_true))
        """,
    # The guarded rewrites of the same: nothing to report.
    "guarded.py": """
        from keras import ops

        EPS = 1e-7


        def weighted_bce(y_true, y_pred, from_logits=False):
            if from_logits:
                y_pred = ops.sigmoid(y_pred)
            y_pred = ops.clip(y_pred, EPS, 1 - EPS)
            weight = ops.where(ops.not_equal(y_true, 0), 10.0, 1.0)
            return -ops.sum(weight * (y_true * ops.log(y_pred)
                                      + (1 - y_true) * ops.log(1 - y_pred)))


        def f(x):
            small = ops.abs(x) < 0.1
            x_safe = ops.where(small, 1.0, x)
            return ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)


        def distance(a, b):
            return ops.mean(ops.sqrt(ops.sum(ops.square(a - b), axis=-1) + 1e-12))


        def ratio(y_true, y_pred):
            return ops.mean(y_true / (y_pred + EPS))


        def growth(y_true, y_pred):
            return ops.mean(ops.exp(ops.clip(y_pred - y_true, -20.0, 20.0)))
        """,
    "metrics_suspect.py": """
        from keras import ops


        def log_score(y_true, y_pred):
            return ops.mean(ops.log(y_pred))


        def ratio(y_true, y_pred):
            return ops.mean(y_true / y_pred)


        def distance(y_true, y_pred):
            return ops.mean(ops.sqrt(ops.square(y_true - y_pred)))


        def growth(y_true, y_pred):
            return ops.mean(ops.exp(y_pred - y_true))


        def f(x):
            return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)


        def smooth(y_true, y_pred):
            return ops.mean(f(y_pred - y_true))


        def signed(y_true, y_pred):
            if ops.mean(y_true) > 0:
                return ops.mean(y_pred)
            return ops.mean(-y_pred)
        """,
    "metrics_guarded.py": """
        from keras import ops


        def log_score(y_true, y_pred):
            return ops.mean(ops.log(ops.clip(y_pred, 1e-7, 1e7)))


        def distance(y_true, y_pred):
            return ops.mean(ops.sqrt(ops.square(y_true - y_pred) + 1e-12))
        """,
    "layers_suspect.py": """
        import keras
        from keras import ops


        class LogOf(keras.layers.Layer):
            def call(self, inputs):
                return ops.log(inputs)


        class RootOf(keras.layers.Layer):
            def call(self, inputs):
                return ops.sqrt(inputs)


        class InverseOf(keras.layers.Layer):
            def call(self, inputs):
                return 1.0 / inputs


        class ExpOf(keras.layers.Layer):
            def call(self, inputs):
                return ops.exp(100.0 * inputs)
        """,
    "layers_guarded.py": """
        import keras
        from keras import ops


        class SafeLogOf(keras.layers.Layer):
            def call(self, inputs):
                return ops.log(ops.maximum(inputs, 1e-6))


        class SafeRootOf(keras.layers.Layer):
            def call(self, inputs):
                return ops.sqrt(inputs + 1e-6)
        """,
}

# Custom losses: name -> (output activation, source); each compiled into its own model.
LOSSES = {
    "where-trap": ("linear", """
        from keras import ops


        def f(x):
            return ops.where(ops.abs(x) < 0.1, 0.5 + x / 12, 1 / (1 - ops.exp(-x)) - 1 / x)


        def loss(y_true, y_pred):
            x = y_pred - y_true
            return ops.mean(f(x) + f(x + 50))
        """),
    "double-where": ("linear", """
        from keras import ops


        def f(x):
            small = ops.abs(x) < 0.1
            x_safe = ops.where(small, 1.0, x)
            return ops.where(small, 0.5 + x / 12, 1 / (1 - ops.exp(-x_safe)) - 1 / x_safe)


        def loss(y_true, y_pred):
            x = y_pred - y_true
            return ops.mean(f(x) + f(x + 50))
        """),
    "unclipped-log": ("sigmoid", """
        from keras import ops


        def loss(y_true, y_pred):
            return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        """),
    "clipped-log": ("sigmoid", """
        from keras import ops


        def loss(y_true, y_pred):
            y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)
            return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
        """),
    "python-branch": ("sigmoid", """
        from keras import ops


        def loss(y_true, y_pred):
            if y_true != 0:
                out = -10 * ops.sum(y_true * ops.log(y_pred))
            else:
                out = -ops.sum((1 - y_true) * ops.log(1 - y_pred))
            return out
        """),
    "division": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.square(y_true - y_pred) / y_pred)
        """),
    "sqrt": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.sqrt(ops.square(y_true - y_pred)))
        """),
    # a batch statistic in the loss: the variance of the batch's targets
    "nmse": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.square(y_pred - y_true)) / ops.var(y_true)
        """),
    "nmse-eps": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.square(y_pred - y_true)) / (ops.var(y_true) + 1e-6)
        """),
    "log-std": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.square(y_pred - y_true)) - 0.01 * ops.log(ops.std(y_true))
        """),
    "acos": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.arccos(y_pred - y_true))
        """),
    "exp": ("linear", """
        from keras import ops


        def loss(y_true, y_pred):
            return ops.mean(ops.exp(y_pred - y_true))
        """),
}


# --- models and files, each built once per session on first use --------------------------------


class Kit:
    """What the scenarios build from: the session's models (conftest), plus models, CSV files
    and source files made on first use and kept for the session."""

    def __init__(self, root: Path, models: dict[str, Path]):
        self.root = root
        self.models = models
        self._built: dict[str, Path] = {}

    def path(self, name: str) -> Path:
        return self.root / name

    def source(self, name: str, text: str | None = None) -> Path:
        p = self.path(name)
        if not p.exists():
            p.write_text(dedent(SOURCES[name] if text is None else text).lstrip(),
                         encoding="utf-8")
        return p

    def csv(self, name: str, rows, header=("a", "b", "c", "label")) -> Path:
        p = self.path(name)
        if not p.exists():
            write_csv(p, list(header), rows)
        return p

    def model(self, name: str) -> Path:
        if name not in self._built:
            import keras

            keras.utils.set_random_seed(0)
            p = self.path(f"{name}.keras")
            MODELS[name](self, keras).save(p)
            self._built[name] = p
        return self._built[name]

    def objects(self, source: str, text: str | None = None) -> dict:
        """The functions and classes a source file defines, imported as nandoc imports them."""
        from nandoc.loading.custom_objects import import_source

        return import_source(self.source(source, text)).objects


def _mlp(keras, *head, loss="binary_crossentropy", metrics=None, optimizer="adam", n_in=3):
    m = keras.Sequential([keras.Input((n_in,)), *head])
    m.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return m


def _conv(keras, rescale: bool):
    scale = [keras.layers.Rescaling(1 / 255)] if rescale else []
    m = keras.Sequential([keras.Input((8, 8, 3)), *scale, keras.layers.Conv2D(4, 3),
                          keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy")
    return m


def _images_npz(kit: Kit) -> Path:
    p = kit.path("images.npz")
    if not p.exists():
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (64, 8, 8, 3)).astype("float32")
        np.savez(p, x=x, y=(x.mean(axis=(1, 2, 3)) > 127.5).astype("float32"))
    return p


def _features(rows) -> np.ndarray:
    return np.array([r[:3] for r in rows], dtype="float32")


def _normalized(keras, adapt_on: np.ndarray):
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(adapt_on)
    return _mlp(keras, norm, keras.layers.Dense(1, activation="sigmoid", name="out"))


def _float16(scale: float):
    def build(kit: Kit, keras):
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            m = _mlp(keras, keras.layers.Dense(4, name="big"),
                     keras.layers.Dense(1, dtype="float32", name="out"), loss="mse")
        finally:
            keras.mixed_precision.set_global_policy("float32")
        m.get_layer("big").kernel.assign(np.full((3, 4), scale, "float32"))
        # a small head keeps the float16 gradients small: only the forward values are at stake
        m.get_layer("out").kernel.assign(np.full((4, 1), 1e-6, "float32"))
        return m
    return build


def _embedding(kit: Kit, keras, vocab: int = 10):
    m = keras.Sequential([keras.Input((4,)), keras.layers.Embedding(vocab, 4, name="tokens"),
                          keras.layers.GlobalAveragePooling1D(),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def _token_rows(past: int | None = None):
    """Four token-id columns in [0, 10) and a 0/1 label; row 40 holds `past` if given."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 10, size=(96, 4))
    if past is not None:
        ids[39, 2] = past
    return [[*map(int, r), int(r[0] > 4)] for r in ids]


def _float16_adam(epsilon: float):
    """Weights in float16 (the "float16" policy, not mixed): Adam's epsilon in their dtype."""
    def build(kit: Kit, keras):
        keras.config.set_dtype_policy("float16")
        try:
            return _mlp(keras, keras.layers.Dense(8, activation="relu"),
                        keras.layers.Dense(1, activation="sigmoid"),
                        optimizer=keras.optimizers.Adam(1e-3, epsilon=epsilon))
        finally:
            keras.config.set_dtype_policy("float32")
    return build


def _loss_file(name: str) -> str:
    return f"loss_{name.replace('-', '_')}.py"


def _custom_loss(name: str):
    def build(kit: Kit, keras):
        act, text = LOSSES[name]
        fn = kit.objects(_loss_file(name), text)["loss"]
        return _mlp(keras, keras.layers.Dense(4, activation="relu"),
                    keras.layers.Dense(1, activation=None if act == "linear" else act,
                                       name="out"), loss=fn)
    return build


def _metrics_model(source: str):
    def build(kit: Kit, keras):
        objects = kit.objects(source)
        return _mlp(keras, keras.layers.Dense(4, activation="relu"),
                    keras.layers.Dense(1, name="out"), loss="mse",
                    metrics=[fn for name, fn in objects.items() if name != "f"])  # f: a helper
    return build


def _suspect_layers(kit: Kit, keras):
    o = kit.objects("layers_suspect.py")
    x = keras.Input((3,))
    # all-zero rows, as a dead ReLU layer gives: log, sqrt and 1/x meet their bad point
    dead = keras.layers.Dense(4, activation="relu", kernel_initializer="zeros", name="dead")(x)
    parts = [o["LogOf"](name="log")(dead), o["RootOf"](name="root")(dead),
             o["InverseOf"](name="inverse")(dead), o["ExpOf"](name="exp")(x)]
    y = keras.layers.Dense(1, activation="sigmoid", name="out")(
        keras.layers.Concatenate(name="cat")(parts))
    m = keras.Model(x, y)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def _guarded_layers(kit: Kit, keras):
    o = kit.objects("layers_guarded.py")
    x = keras.Input((3,))
    dead = keras.layers.Dense(4, activation="relu", kernel_initializer="zeros", name="dead")(x)
    parts = [o["SafeLogOf"](name="log")(dead), o["SafeRootOf"](name="root")(dead)]
    y = keras.layers.Dense(1, activation="sigmoid", name="out")(
        keras.layers.Concatenate(name="cat")(parts))
    m = keras.Model(x, y)
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def _large_rows(factor: float):
    return [[a, b, round(c * factor, 2), y] for a, b, c, y in healthy_rows()]


def _batch_constant_rows():
    """Regression rows whose second batch of 32 has one constant target."""
    rows = _regression_rows()
    for r in rows[32:]:
        r[3] = 1.0
    return rows


def _batch_stat_run(name: str):
    def build(kit: Kit):
        data = kit.csv("batch_constant64.csv", _batch_constant_rows())
        return _config(kit.model(f"loss-{name}"), data,
                       custom_objects=(kit.path(_loss_file(name)),))
    return build


def _regression_rows():
    return [[a, b, c, round(a + b, 2)] for a, b, c, _ in healthy_rows(64)]


def _linear_rows(scale: float, n: int = 256):
    """A noise-free linear target: plain SGD fits it, unless the scale and rate diverge."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) * scale).round(4)
    return [[*np.round(r, 4), t] for r, t in zip(x, y, strict=True)]


def _fp16_rows():
    return [[round(abs(a) + 1, 4), round(abs(b) + 1, 4), round(abs(c) + 1, 4), y]
            for a, b, c, y in healthy_rows(64)]


MODELS: dict[str, Callable] = {
    "softmax-one-unit": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(1, activation="softmax", name="out")),
    # a linear head under binary_crossentropy whose outputs all stay at 0.5: only the static
    # read of the structure sees the mismatch
    "linear-bce-calm": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(1, name="out", kernel_initializer="zeros",
                                  bias_initializer=keras.initializers.Constant(0.5))),
    # the same whose outputs leave [0, 1] on real batches
    "linear-bce-wide": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(1, name="out",
                                  kernel_initializer=keras.initializers.Constant(3.0))),
    # adapted where 'c' is constant at 0, while the data's 'c' varies
    "normalization-constant": lambda kit, keras: _normalized(
        keras, _features(healthy_rows()) * np.array([1, 1, 0], "float32")),
    # adapted on the very data it reads, whose 'c' is in the millions
    "normalization-large": lambda kit, keras: _normalized(keras, _features(_large_rows(1e6))),
    "regression-sgd": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1), loss="mse",
        optimizer=keras.optimizers.SGD(learning_rate=0.01)),
    # poisson takes the log of the prediction: a linear output reaches negative rates
    "builtin-poisson-linear": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1, name="out"),
        loss="poisson"),
    "builtin-poisson-softplus": lambda kit, keras: _mlp(
        keras, keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(1, activation="softplus", name="out"), loss="poisson"),
    "embedding": _embedding,
    "big-vocab-embedding": lambda kit, keras: _embedding(kit, keras, vocab=32000),
    "conv-raw": lambda kit, keras: _conv(keras, rescale=False),
    "conv-rescaled": lambda kit, keras: _conv(keras, rescale=True),
    "float16-adam-tiny-epsilon": _float16_adam(1e-8),
    "float16-adam-epsilon": _float16_adam(1e-3),
    "float16-inf": _float16(1e5),
    "float16-calm": _float16(0.5),
    **{f"loss-{name}": _custom_loss(name) for name in LOSSES},
    "metrics-suspect": _metrics_model("metrics_suspect.py"),
    "metrics-guarded": _metrics_model("metrics_guarded.py"),
    "layers-suspect": _suspect_layers,
    "layers-guarded": _guarded_layers,
}


# --- scenarios: name -> the Config of one run ---------------------------------------------------


def _config(model: Path | None, data: Path, **kw):
    from nandoc.config import Config

    kw.setdefault("target", ("label",))
    return Config(model_path=model, data_path=data, **kw)


def _train(**kw):
    from nandoc.config import TrainConfig

    return TrainConfig(**{"batch_size": 32, **kw})


def _healthy(kit: Kit) -> Path:
    return kit.csv("healthy.csv", healthy_rows())


def _nonfinite_rows():
    rows = healthy_rows()
    rows[4][1] = ""  # empty
    rows[9][1] = "#VALUE!"  # text
    rows[19][0] = "inf"
    rows[29][3] = "nan"  # the target
    return rows


def _labels(*changes):
    rows = healthy_rows()
    for i, label in changes:
        rows[i][3] = label
    return rows


def _with_sources(kit: Kit, source: str):
    return _config(kit.models["binary"], _healthy(kit), custom_objects=(kit.source(source),))


def _custom_loss_run(name: str):
    def build(kit: Kit):
        act, _ = LOSSES[name]
        rows = _regression_rows() if act == "linear" else healthy_rows(64)
        data = kit.csv(f"{'regression' if act == 'linear' else 'binary'}64.csv", rows)
        return _config(kit.model(f"loss-{name}"), data,
                       custom_objects=(kit.path(_loss_file(name)),))
    return build


def _models_with_sources(model: str, source: str, regression: bool = False):
    def build(kit: Kit):
        path = kit.model(model)
        rows = _regression_rows() if regression else healthy_rows(64)
        data = kit.csv("regression64.csv" if regression else "binary64.csv", rows)
        return _config(path, data, custom_objects=(kit.source(source),))
    return build


SCENARIOS: dict[str, Callable[[Kit], object]] = {
    "images-raw": lambda kit: _config(kit.model("conv-raw"), _images_npz(kit), target=("y",)),
    "images-rescaled": lambda kit: _config(kit.model("conv-rescaled"), _images_npz(kit),
                                           target=("y",)),
    "healthy": lambda kit: _config(kit.models["binary"], _healthy(kit), validation_split=0.2),
    "nonfinite-cells": lambda kit: _config(
        kit.models["binary"], kit.csv("nonfinite.csv", _nonfinite_rows())),
    "large-feature": lambda kit: _config(
        kit.models["binary"], kit.csv("large.csv", _large_rows(1e5))),
    "overflowing-feature": lambda kit: _config(
        kit.models["binary"], kit.csv("overflowing.csv", _large_rows(1e20))),
    "normalized-large-feature": lambda kit: _config(
        kit.model("normalization-large"), kit.csv("millions.csv", _large_rows(1e6))),
    "short-validation-windows": lambda kit: _config(  # 6 rows, fewer than one window of 8
        kit.models["seq8"], _healthy(kit), validation_split=0.05),
    "validation-windows-fit": lambda kit: _config(
        kit.models["seq8"], _healthy(kit), validation_split=0.2),
    "labels-outside-0-1": lambda kit: _config(
        kit.models["binary"], kit.csv("labels_2_and_-1.csv", _labels((6, 2), (40, -1)))),
    "class-ids-in-range": lambda kit: _config(  # ids 0..2 for a 3-unit softmax
        kit.models["sparse3"], kit.csv("class_ids.csv", _labels((6, 2), (40, 2)))),
    "softmax-one-unit": lambda kit: _config(kit.model("softmax-one-unit"), _healthy(kit)),
    "linear-bce-calm": lambda kit: _config(kit.model("linear-bce-calm"), _healthy(kit)),
    "linear-bce-wide": lambda kit: _config(kit.model("linear-bce-wide"), _healthy(kit)),
    "normalization-constant-feature": lambda kit: _config(
        kit.model("normalization-constant"), _healthy(kit)),
    "float16-overflow": lambda kit: _config(
        kit.model("float16-inf"), kit.csv("positive64.csv", _fp16_rows())),
    "float16-headroom": lambda kit: _config(
        kit.model("float16-calm"), kit.csv("positive64.csv", _fp16_rows())),
    "builtin-poisson-linear": lambda kit: _config(kit.model("builtin-poisson-linear"),
                                                  _healthy(kit)),
    "builtin-poisson-softplus": lambda kit: _config(kit.model("builtin-poisson-softplus"),
                                                    _healthy(kit)),
    "token-id-past-vocab": lambda kit: _config(
        kit.model("embedding"), kit.csv("tokens_past.csv", _token_rows(12),
                                        header=["t0", "t1", "t2", "t3", "label"])),
    "large-token-ids": lambda kit: _config(  # ids spread over a 32,000-token vocabulary
        kit.model("big-vocab-embedding"), kit.csv(
            "big_tokens.csv", [[*(int(v) * 3199 for v in r[:4]), r[4]] for r in _token_rows()],
            header=["t0", "t1", "t2", "t3", "label"])),
    "token-ids-in-vocab": lambda kit: _config(
        kit.model("embedding"), kit.csv("tokens.csv", _token_rows(),
                                        header=["t0", "t1", "t2", "t3", "label"])),
    "float16-adam-tiny-epsilon": lambda kit: _config(kit.model("float16-adam-tiny-epsilon"),
                                                     _healthy(kit)),
    "float16-adam-epsilon": lambda kit: _config(kit.model("float16-adam-epsilon"),
                                                _healthy(kit)),
    "batch-nmse": _batch_stat_run("nmse"),
    "batch-nmse-eps": _batch_stat_run("nmse-eps"),
    "batch-log-std": _batch_stat_run("log-std"),
    "suspect-source": lambda kit: _with_sources(kit, "suspects.py"),
    "guarded-source": lambda kit: _with_sources(kit, "guarded.py"),
    **{f"loss-{name}": _custom_loss_run(name) for name in LOSSES},
    "metrics-suspect": _models_with_sources("metrics-suspect", "metrics_suspect.py", True),
    "metrics-guarded": _models_with_sources("metrics-guarded", "metrics_guarded.py", True),
    "layers-suspect": _models_with_sources("layers-suspect", "layers_suspect.py"),
    "layers-guarded": _models_with_sources("layers-guarded", "layers_guarded.py"),
    # plain SGD on a linear target scaled 30x at rate 0.5: the loss and gradients blow up
    "replay-diverging": lambda kit: _config(
        kit.model("regression-sgd"), kit.csv("linear_x30.csv", _linear_rows(30.0)),
        train=_train(learning_rate=0.5, epochs=20)),
    "replay-healthy": lambda kit: _config(
        kit.model("regression-sgd"), kit.csv("linear.csv", _linear_rows(1.0)),
        train=_train(epochs=3)),
}


@pytest.fixture(scope="session")
def case_report(tmp_path_factory, models):
    """(driver, scenario) -> its Report, each scenario run once per session."""
    kit = Kit(tmp_path_factory.mktemp("check_cases"), models)
    done: dict[tuple[str, str], object] = {}

    def get(driver: str, scenario: str):
        key = (driver, scenario)
        if key not in done:
            done[key] = _driver(driver)(SCENARIOS[scenario](kit))
        return done[key]

    return get


# --- the runner ---------------------------------------------------------------------------------


def _severity_level(name: str) -> int:
    from nandoc.core.finding import Severity

    return Severity(name).level


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check(case: Case, case_report):
    report = case_report(case.driver, case.scenario)
    results = {r.check: r for r in report.checks}
    assert case.check in results, f"{case.check} did not run at all"
    result = results[case.check]
    own = [f for f in report.findings if f.check == case.check]
    seen = sorted((f.cause, f.severity.value) for f in own)
    if case.expect == "fires":
        assert case.causes, f"{case.id} names no cause"
        for cause in case.causes:
            got = {sev for c, sev in seen if c == cause}
            assert got, (f"{case.check} did not emit {cause} ({result.outcome.value}: "
                         f"{result.message or 'no message'}); it emitted {seen}")
            if case.severity is not None:
                assert case.severity in got, f"{cause} at {got}, not {case.severity}"
    else:
        assert case.expect == "silent", case.expect
        assert result.outcome.value == "ran", f"{result.outcome.value}: {result.message}"
        loud = [(c, sev) for c, sev in seen if _severity_level(sev) >= _severity_level("warning")]
        assert loud == [], [f.title for f in own]


def test_case_ids_are_unique_and_name_known_scenarios():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert {c.scenario for c in CASES} <= set(SCENARIOS)
    assert all(c.expect in ("fires", "silent") for c in CASES)
