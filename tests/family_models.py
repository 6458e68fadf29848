"""The tiny model of each common Keras family that tests/test_families.py builds, trains for an
epoch, saves and loads back: its builder, its input shape, the layer records a pass gives."""

from __future__ import annotations

import keras
import numpy as np

N = 8  # samples per batch
VOCAB = 20


@keras.saving.register_keras_serializable(package="nandoc_families")
class TinyNet(keras.Model):
    """A subclassed model: its `call` is Python the pass runs as one call."""

    def __init__(self, units: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu", name="hidden")
        self.out = keras.layers.Dense(1, name="out")

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def seq(shape, *layers, name, dtype="float32"):
    return keras.Sequential([keras.Input(shape, dtype=dtype), *layers], name=name)


def transformer():
    i = keras.Input((6, 8), name="tokens")
    att = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(i, i)
    h = keras.layers.LayerNormalization(name="ln1")(keras.layers.Add(name="add1")([i, att]))
    ff = keras.layers.Dense(8, activation="relu", name="ff")(h)
    h = keras.layers.LayerNormalization(name="ln2")(keras.layers.Add(name="add2")([h, ff]))
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(i, keras.layers.Dense(1, name="out")(pooled), name="transformer")


def nested():
    inner = seq((3,), keras.layers.Dense(4, activation="tanh", name="inner_dense"),
                 keras.layers.Dense(4, name="inner_proj"), name="inner")
    i = keras.Input((3,), name="x")
    h = keras.layers.Dense(3, activation="relu", name="pre")(i)
    return keras.Model(i, keras.layers.Dense(1, name="out")(inner(h)), name="nested")


def builders():
    L = keras.layers
    return {
        "lstm": ((6, 3), lambda: seq((6, 3), L.LSTM(4, name="rnn"), L.Dense(1, name="out"),
                                      name="lstm")),
        "gru": ((6, 3), lambda: seq((6, 3), L.GRU(4, name="rnn"), L.Dense(1, name="out"),
                                     name="gru")),
        "simple_rnn": ((6, 3), lambda: seq((6, 3), L.SimpleRNN(4, name="rnn"),
                                            L.Dense(1, name="out"), name="simple_rnn")),
        "bilstm": ((6, 3), lambda: seq((6, 3), L.Bidirectional(L.LSTM(4), name="rnn"),
                                        L.Dense(1, name="out"), name="bilstm")),
        "embed_lstm": ((6,), lambda: seq(
            (6,), L.Embedding(VOCAB, 4, mask_zero=True, name="embed"), L.LSTM(4, name="rnn"),
            L.Dense(1, name="out"), name="embed_lstm", dtype="int32")),
        "transformer": ((6, 8), transformer),
        "conv1d": ((8, 3), lambda: seq((8, 3), L.Conv1D(4, 3, activation="relu", name="conv"),
                                        L.Flatten(name="flat"), L.Dense(1, name="out"),
                                        name="conv1d")),
        "conv2d": ((8, 8, 2), lambda: seq(
            (8, 8, 2), L.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            L.MaxPooling2D(name="maxpool"), L.GlobalAveragePooling2D(name="pool"),
            L.Dense(1, name="out"), name="conv2d")),
        "conv3d": ((4, 4, 4, 1), lambda: seq(
            (4, 4, 4, 1), L.Conv3D(2, 3, name="conv"), L.GlobalAveragePooling3D(name="pool"),
            L.Dense(1, name="out"), name="conv3d")),
        "timedist": ((5, 3), lambda: seq(
            (5, 3), L.TimeDistributed(L.Dense(4, activation="relu"), name="td"),
            L.GlobalAveragePooling1D(name="pool"), L.Dense(1, name="out"), name="timedist")),
        "subclassed": ((3,), lambda: TinyNet(4, name="tiny")),
        "nested": ((3,), nested),
    }


# The layer records each family's pass gives, in execution order.
RECORDS = {
    "lstm": ["rnn", "out"], "gru": ["rnn", "out"], "simple_rnn": ["rnn", "out"],
    "bilstm": ["rnn", "out"], "embed_lstm": ["embed", "rnn", "out"],
    "transformer": ["mha", "add1", "ln1", "ff", "add2", "ln2", "pool", "out"],
    "conv1d": ["conv", "flat", "out"], "conv2d": ["conv", "maxpool", "pool", "out"],
    "conv3d": ["conv", "pool", "out"], "timedist": ["td", "pool", "out"],
    "subclassed": ["tiny"], "nested": ["pre", "inner/inner_dense", "inner/inner_proj", "out"],
}
FAMILIES = sorted(RECORDS)
RECURRENT = ["lstm", "gru", "simple_rnn", "bilstm", "embed_lstm"]


def data(name: str, shape: tuple, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "embed_lstm":
        x = rng.integers(1, VOCAB, size=(n, *shape)).astype("int32")
        x[::2, 4:] = 0  # padded sequences: the mask reaches the LSTM
    else:
        x = rng.normal(size=(n, *shape)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y
