"""Shared fixtures: tiny real Keras models saved once per session, and CSV writers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_configs"


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite the golden files under tests/golden from the current output "
                          "instead of comparing against them (review the diff afterwards)")


@pytest.fixture(scope="session")
def regen_golden(request) -> bool:
    """True under --regen-golden: golden tests write their files instead of comparing."""
    return bool(request.config.getoption("--regen-golden"))


def write_csv(path: Path, header: list[str], rows) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def healthy_rows(n: int = 120, seed: int = 0):
    """Three scaled features and a 0/1 label that depends on them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).round(4)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return [[*row, int(label)] for row, label in zip(x, y, strict=True)]


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny saved models, built once: name -> .keras path."""
    import keras

    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("models")
    out: dict[str, Path] = {}

    def mlp(head, loss, n_in=3, name=None):
        m = keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(4, activation="relu"),
                              head])
        m.compile(optimizer="adam", loss=loss)
        return _save(m, d / f"{name}.keras")

    out["binary"] = mlp(keras.layers.Dense(1, activation="sigmoid", name="out"),
                        "binary_crossentropy", name="binary")
    out["sparse3"] = mlp(keras.layers.Dense(3, activation="softmax", name="out"),
                         "sparse_categorical_crossentropy", name="sparse3")
    out["categorical3"] = mlp(keras.layers.Dense(3, activation="softmax", name="out"),
                              "categorical_crossentropy", name="categorical3")
    out["msle"] = mlp(keras.layers.Dense(1, name="out"), "msle", name="msle")
    out["mse"] = mlp(keras.layers.Dense(1, name="out"), "mse", name="mse")
    seq = keras.Sequential([keras.Input((8, 3)), keras.layers.Conv1D(4, 3, padding="same"),
                            keras.layers.GlobalAveragePooling1D(),
                            keras.layers.Dense(1, activation="sigmoid")])
    seq.compile(optimizer="adam", loss="binary_crossentropy")
    out["seq8"] = _save(seq, d / "seq8.keras")
    return out


@pytest.fixture()
def healthy_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows())
