"""One tiny runnable example per model family nandoc supports, healthy or with a planted fault.

    python sample_configs/families.py            # (re)writes sample_configs/<family>/ (faulty)

Each builder writes a trained model, its data and a nandoc.toml into a folder and returns the
cause nandoc must name. The test suite (tests/test_families_matrix.py) builds every family twice
into a temporary folder, healthy and faulty, and runs `check` and `replay` on each.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import numpy as np

N = 240  # samples per family: small enough to train in a second


@dataclass(frozen=True)
class Planted:
    cause: str  # the cause nandoc must name
    rank: int  # at or above this rank (1 for data faults)
    what: str  # one line for the README


def _toml(folder: Path, model: str, data: str, extra: str = "", objects: str = "",
          window: int | None = None) -> None:
    objs = f'custom_objects = ["{objects}"]\n' if objects else ""
    windows = f"\n[data.window]\nlength = {window}\n" if window else ""
    (folder / "nandoc.toml").write_text(
        f'[model]\npath = "{model}"\n{objs}\n[data]\npath = "{data}"\n{extra}'
        f"validation_split = 0.2\n{windows}\n[train]\nbatch_size = 32\nepochs = 2\n",
        encoding="utf-8")


def _fit(model, x, y, epochs: int = 2):
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def _rows(rng, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")


def _csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    import pandas as pd

    pd.DataFrame(columns).to_csv(path, index=False)


def mlp(folder: Path, fault: bool, keras) -> Planted:
    x, y = _rows(np.random.default_rng(0))
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy")
    _fit(m, x, y).save(folder / "model.keras")
    cols = {"a": x[:, 0].astype(object), "b": x[:, 1], "c": x[:, 2], "label": y}
    if fault:
        cols["a"][150] = np.nan
    _csv(folder / "data.csv", cols)
    _toml(folder, "model.keras", "data.csv", 'target = "label"\n')
    return Planted("data-nonfinite", 1, "an empty cell in column 'a', row 151")


def _series(rng, n: int = N) -> dict[str, np.ndarray]:
    t = np.arange(n, dtype="float32")
    s = np.sin(t / 7) + 0.1 * rng.normal(size=n)
    return {"s": s.astype("float32"), "v": np.cos(t / 5).astype("float32"),
            "label": (np.roll(s, -1) > s).astype("float32")}


def conv1d(folder: Path, fault: bool, keras) -> Planted:
    cols = _series(np.random.default_rng(1))
    head = keras.layers.Dense(1, activation="softmax" if fault else "sigmoid", name="out")
    m = keras.Sequential([keras.Input((16, 2)), keras.layers.Conv1D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling1D(), head])
    m.compile("adam", "binary_crossentropy")
    m.save(folder / "model.keras")
    _csv(folder / "series.csv", cols)
    _toml(folder, "model.keras", "series.csv", 'target = "label"\nfeatures = ["s", "v"]\n',
          window=16)
    return Planted("softmax-single-unit", 3, "Dense(1, activation='softmax') as the output")


def conv2d_npz(folder: Path, fault: bool, keras) -> Planted:
    rng = np.random.default_rng(2)
    x = rng.random((N, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("float32")
    m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.MaxPooling2D(), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy")
    _fit(m, x, y).save(folder / "model.keras")
    if fault:
        x[170, 2, 5, 0] = np.nan
    np.savez(folder / "images.npz", x=x, y=y)
    _toml(folder, "model.keras", "images.npz")
    return Planted("data-nonfinite", 1, "a NaN pixel in image 171 of images.npz")


def image_folder(folder: Path, fault: bool, keras) -> Planted:
    import tensorflow as tf

    rng = np.random.default_rng(3)
    classes = ("cat", "dog", "fox") if fault else ("cat", "dog")
    for k, name in enumerate(classes):
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(24):
            img = (rng.random((12, 12, 3)) * 120).astype("uint8")
            img[:, : 4 * (k + 1)] += 100
            tf.io.write_file(str(folder / "images" / name / f"{i:03d}.png"),
                             tf.io.encode_png(img))
    m = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Rescaling(1 / 255),
                          keras.layers.Conv2D(4, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.save(folder / "model.keras")
    _toml(folder, "model.keras", "images")
    return Planted("label-out-of-range", 1, "a third class folder for a 2-unit softmax")


def text(folder: Path, fault: bool, keras) -> Planted:
    rng = np.random.default_rng(4)
    tokens = rng.integers(1, 50, (N, 12))
    y = (tokens[:, :3].mean(axis=1) > 25).astype("float32")
    inp = keras.Input((12,), name="tokens")
    h = keras.layers.LSTM(8)(keras.layers.Embedding(50, 8, mask_zero=True)(inp))
    m = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
    m.compile("adam", "binary_crossentropy")
    _fit(m, tokens, y, epochs=1).save(folder / "model.keras")
    if fault:
        tokens[60, 7] = 73
    np.savez(folder / "text.npz", tokens=tokens, y=y)
    _toml(folder, "model.keras", "text.npz")
    return Planted("input-index-out-of-range", 1, "token id 73 for an Embedding of 50 ids")


def _two_heads(keras, n_tokens: int = 20):
    a = keras.Input((2,), name="numeric")
    b = keras.Input((4,), name="tokens")
    e = keras.layers.Flatten()(keras.layers.Embedding(n_tokens, 3)(b))
    h = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([a, e]))
    return a, b, h


def _table(rng) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {"age": rng.normal(size=N).astype("float32"),
                                   "income": rng.normal(size=N).astype("float32")}
    cols.update({f"t{i}": rng.integers(0, 20, N) for i in range(4)})
    cols["price"] = (2 * cols["age"] + 0.1 * rng.normal(size=N)).astype("float32")
    cols["churned"] = (cols["income"] > 0).astype("float32")
    return cols


_INPUTS = 'inputs = { numeric = ["age", "income"], tokens = ["t0", "t1", "t2", "t3"] }\n'


def multi_input(folder: Path, fault: bool, keras) -> Planted:
    cols = _table(np.random.default_rng(5))
    a, b, h = _two_heads(keras)
    m = keras.Model([a, b], keras.layers.Dense(1, activation="sigmoid")(h))
    m.compile("adam", "binary_crossentropy")
    x = {"numeric": np.stack([cols["age"], cols["income"]], 1),
         "tokens": np.stack([cols[f"t{i}"] for i in range(4)], 1)}
    _fit(m, x, cols["churned"]).save(folder / "model.keras")
    if fault:
        cols["income"] = cols["income"].astype(object)
        cols["income"][130] = np.nan
    _csv(folder / "data.csv", cols)
    _toml(folder, "model.keras", "data.csv", _INPUTS + 'target = "churned"\n')
    return Planted("data-nonfinite", 1, "an empty 'income' cell (input 'numeric'), row 131")


def multi_output(folder: Path, fault: bool, keras) -> Planted:
    cols = _table(np.random.default_rng(6))
    a, b, h = _two_heads(keras)
    m = keras.Model([a, b], [keras.layers.Dense(1, name="price")(h),
                             keras.layers.Dense(1, activation="sigmoid", name="churn")(h)])
    m.compile("adam", loss={"price": "mse", "churn": "binary_crossentropy"},
              loss_weights={"price": 1.0, "churn": 0.5})
    x = {"numeric": np.stack([cols["age"], cols["income"]], 1),
         "tokens": np.stack([cols[f"t{i}"] for i in range(4)], 1)}
    _fit(m, x, {"price": cols["price"], "churn": cols["churned"]}).save(folder / "model.keras")
    if fault:
        cols["churned"][cols["churned"] == 1] = 2.0
    _csv(folder / "data.csv", cols)
    _toml(folder, "model.keras", "data.csv",
          _INPUTS + 'target = { price = "price", churn = "churned" }\n')
    return Planted("label-out-of-range", 1, "churn labels 0/2 into binary_crossentropy")


LOG_LOSS = '''
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="families")
def log_loss(y_true, y_pred):
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
'''
CLIPPED_LOSS = LOG_LOSS.replace("    return", "    y_pred = ops.clip(y_pred, 1e-7, 1 - 1e-7)\n"
                                "    return")


def attention(folder: Path, fault: bool, keras) -> Planted:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, 10, 4)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0).astype("float32")
    (folder / "losses.py").write_text(dedent(LOG_LOSS if fault else CLIPPED_LOSS).lstrip(),
                                      encoding="utf-8")
    loss = _module(folder / "losses.py").log_loss
    inp = keras.Input((10, 4))
    att = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([inp, att]))
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(8, activation="relu")(h))
    # saturating logits: the sigmoid reaches exactly 0 and 1 in float32
    out = keras.layers.Dense(1, activation="sigmoid",
                             kernel_initializer=keras.initializers.Constant(40.0))(h)
    m = keras.Model(inp, out)
    m.compile("adam", loss)
    m.save(folder / "model.keras")
    np.savez(folder / "seq.npz", x=x, y=y)
    _toml(folder, "model.keras", "seq.npz", objects="losses.py")
    return Planted("unclipped-log", 3, "log(y_pred) and log(1 - y_pred) unclipped in the loss")


SUBCLASS = '''
import keras


@keras.saving.register_keras_serializable(package="families")
class Scorer(keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}
'''


def _module(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"families_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subclassed(folder: Path, fault: bool, keras) -> Planted:
    (folder / "scorer.py").write_text(dedent(SUBCLASS).lstrip(), encoding="utf-8")
    scorer = _module(folder / "scorer.py").Scorer
    x, y = _rows(np.random.default_rng(8))
    m = scorer()
    m.compile("adam", "binary_crossentropy")
    _fit(m, x, y).save(folder / "model.keras")
    cols = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y}
    if fault:
        cols["c"] = cols["c"].astype("float64") * 1e13
    _csv(folder / "data.csv", cols)
    _toml(folder, "model.keras", "data.csv", 'target = "label"\n', objects="scorer.py")
    return Planted("data-unscaled", 1, "column 'c' in the 1e13s")


def gru(folder: Path, fault: bool, keras) -> Planted:
    cols = _series(np.random.default_rng(9))
    m = keras.Sequential([keras.Input((16, 2)), keras.layers.GRU(8),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile("adam", "binary_crossentropy")
    m.save(folder / "model.keras")
    if fault:
        cols["label"] = cols["label"] * 2
    _csv(folder / "series.csv", cols)
    _toml(folder, "model.keras", "series.csv", 'target = "label"\nfeatures = ["s", "v"]\n',
          window=16)
    return Planted("label-out-of-range", 1, "labels 0/2 into binary_crossentropy")


PIPELINE = '''
from pathlib import Path

import numpy as np
import tensorflow as tf


def make_dataset():
    data = np.load(Path(__file__).parent / "pipeline.npz")
    x = {"numeric": data["numeric"], "tokens": data["tokens"]}
    return tf.data.Dataset.from_tensor_slices((x, data["y"])).batch(32)
'''


def source(folder: Path, fault: bool, keras) -> Planted:
    rng = np.random.default_rng(10)
    numeric = rng.normal(size=(N, 2)).astype("float32")
    tokens = rng.integers(0, 20, (N, 4))
    y = (numeric[:, 0] > 0).astype("float32")
    a, b, h = _two_heads(keras)
    m = keras.Model([a, b], keras.layers.Dense(1, activation="sigmoid")(h))
    m.compile("adam", "binary_crossentropy")
    _fit(m, {"numeric": numeric, "tokens": tokens}, y).save(folder / "model.keras")
    if fault:
        numeric[77, 1] = np.inf
    np.savez(folder / "pipeline.npz", numeric=numeric, tokens=tokens, y=y)
    (folder / "data.py").write_text(dedent(PIPELINE).lstrip(), encoding="utf-8")
    (folder / "nandoc.toml").write_text(
        '[model]\npath = "model.keras"\n\n[data]\nsource = "data.py:make_dataset"\n'
        "validation_split = 0.2\n\n[train]\nbatch_size = 32\nepochs = 2\n", encoding="utf-8")
    return Planted("data-nonfinite", 1, "an inf in element 78 of the tf.data pipeline")


FAMILIES: dict[str, Callable] = {
    "mlp": mlp, "conv1d": conv1d, "conv2d_npz": conv2d_npz, "image_folder": image_folder,
    "text": text, "multi_input": multi_input, "multi_output": multi_output,
    "attention": attention, "subclassed": subclassed, "gru": gru, "source": source,
}


def build(family: str, folder: Path, fault: bool) -> Planted:
    import keras

    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    return FAMILIES[family](folder, fault, keras)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent / "families"
    for name in sys.argv[1:] or FAMILIES:
        print(name, build(name, root / name, fault=True))
