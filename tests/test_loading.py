"""Data and model loading on real files: rows as the user sees them, splits, windows, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nandoc.config import Config, WindowConfig
from nandoc.errors import DataError, ModelLoadError
from nandoc.loading.dataset import ModelInput, build_dataset
from nandoc.loading.table import open_table, scan_table
from tests.conftest import healthy_rows, write_csv


def _build(path: Path, model_input=None, **cfg):
    cfg.setdefault("target", ("label",))
    table = open_table(path)
    return build_dataset(table, scan_table(table), Config(data_path=path, **cfg), model_input)


def test_scan_counts_each_kind_of_bad_cell_with_file_rows(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,label\n1,0\n,1\nn/a,0\nfoo,1\nnan,0\ninf,1\n-Infinity,0\n1e39,1\n2,0\n")
    c = scan_table(open_table(p)).columns["a"]
    assert (c.n_missing, c.n_text, c.n_nan, c.n_posinf, c.n_neginf, c.n_overflow32) == \
        (2, 1, 1, 1, 1, 1)
    assert c.bad_rows == (2, 3, 4, 5, 6, 7, 8)
    assert c.text_examples == ("foo",)
    assert open_table(p).lines_of([2]) == (3,)
    assert c.min == 1.0 and c.max == 1e39


def test_semicolon_and_tab_delimiters(tmp_path):
    for sep, name in ((";", "d.csv"), ("\t", "d.tsv")):
        p = tmp_path / name
        p.write_text(f"a{sep}label\n1{sep}0\n2{sep}1\n")
        assert scan_table(open_table(p)).columns["a"].max == 2.0


def test_parquet_and_npz_read_like_csv(tmp_path):
    import polars as pl

    pl.DataFrame({"a": [1.0, float("nan"), 3.0], "label": [0, 1, 0]}).write_parquet(
        tmp_path / "d.parquet")
    assert scan_table(open_table(tmp_path / "d.parquet")).columns["a"].n_nan == 1
    np.savez(tmp_path / "d.npz", x=np.array([[1.0, 2.0], [np.inf, 4.0]]), y=np.array([0, 1]))
    scan = scan_table(open_table(tmp_path / "d.npz"))
    assert list(scan.columns) == ["x0", "x1", "y"] and scan.columns["x0"].n_posinf == 1
    ds = build_dataset(open_table(tmp_path / "d.npz"), scan, Config(), None)
    assert ds.targets == ("y",) and ds.features == ("x0", "x1")


def test_validation_split_takes_the_last_rows_like_keras(healthy_csv):
    ds = _build(healthy_csv, validation_split=0.25)
    assert ds.train.n == 90 and ds.val.n == 30
    assert ds.val.rows[0] == 91 and ds.val.rows[-1] == 120


def test_default_features_skip_text_columns(tmp_path):
    rows = [[f"2024-01-{i + 1:02d}", *r] for i, r in enumerate(healthy_rows(20))]
    p = write_csv(tmp_path / "d.csv", ["date", "a", "b", "c", "label"], rows)
    ds = _build(p)
    assert ds.features == ("a", "b", "c") and ds.ignored_columns == ("date",)


def test_windows_take_t_from_the_model_and_label_from_the_last_row(healthy_csv):
    ds = _build(healthy_csv, ModelInput(3, 8, 3), validation_split=0.25)
    assert ds.window == 8 and ds.train.x.shape == (83, 8, 3)
    assert ds.train.rows[0] == 8  # the first window ends on row 8
    assert ds.val.x.shape == (23, 8, 3) and ds.val.rows[0] == 98


def test_window_stride(healthy_csv):
    ds = _build(healthy_csv, ModelInput(3, 8, 3), window=WindowConfig(length=8, stride=4))
    assert ds.train.x.shape[0] == (120 - 8) // 4 + 1
    assert list(ds.train.rows[:3]) == [8, 12, 16]


@pytest.mark.parametrize(
    "model_input, cfg, message",
    [
        (ModelInput(2, None, 5), {}, "The model expects 5 features per row but the data gives 3"),
        (ModelInput(3, 8, 3), {"window": WindowConfig(length=10)},
         "[data.window] length is 10, but the model's input takes windows of 8 rows"),
        (ModelInput(2, None, 3), {"window": WindowConfig(length=10)},
         "the model takes single rows (None, 3), not windows"),
        (ModelInput(3, None, 3), {}, "set [data.window] length"),
        (None, {"target": ("lable",)},
         "The target column 'lable' is not in data.csv. Its columns are: 'a', 'b', 'c', "
         "'label'. Did you mean 'label'?"),
        (None, {"target": ()}, "nandoc needs to know the target column of data.csv"),
        (None, {"features": ("a", "zz")}, "The feature column 'zz' is not in data.csv"),
        (ModelInput(3, 200, 3), {}, "yields no training windows"),
    ],
    ids=["feature-count", "window-vs-model", "window-on-rows", "no-window-length",
         "unknown-target", "no-target", "unknown-feature", "window-longer-than-data"],
)
def test_data_that_does_not_fit_is_one_clear_error(healthy_csv, model_input, cfg, message):
    with pytest.raises(DataError) as err:
        _build(healthy_csv, model_input, **cfg)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "is empty"), (b"a,label\n", "has a header but no data rows"),
     (b"a,label\n1,2,3,4\n5\n", "could not be")],
    ids=["empty", "header-only", "ragged"],
)
def test_unreadable_csv(tmp_path, content, message):
    p = tmp_path / "data.csv"
    p.write_bytes(content)
    with pytest.raises(DataError) as err:
        _build(p)
    assert message in str(err.value)


def test_missing_data_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_table(tmp_path / "nope.csv")


def test_model_errors_are_paragraphs(tmp_path, models):
    from nandoc.loading.model import load_model

    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    (tmp_path / "model.pt").write_bytes(b"torch")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    cases = {
        tmp_path / "nope.keras": "does not exist",
        tmp_path / "junk.keras": "is not a valid .keras archive",
        tmp_path / "sm": "TensorFlow SavedModel folder",
        tmp_path / "model.pt": "models must be .keras or .h5",
    }
    for path, message in cases.items():
        with pytest.raises(ModelLoadError) as err:
            load_model(path, {}, unsafe=False)
        assert message in str(err.value)


def test_missing_custom_object_is_named(tmp_path):
    import keras
    from keras import ops

    from nandoc.loading.model import load_model

    def my_loss(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred))

    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss=my_loss)
    m.save(tmp_path / "m.keras")
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m.keras", {}, unsafe=False)
    assert "'my_loss'" in str(err.value) and "custom_objects" in str(err.value)


def test_lambda_layer_is_refused_in_safe_mode_and_never_executed(tmp_path):
    import keras

    from nandoc.loading.model import load_model

    marker = tmp_path / "executed"
    m = keras.Sequential([keras.Input((2,)),
                          keras.layers.Lambda(lambda t: t * 2)])
    m.save(tmp_path / "lam.keras")
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "lam.keras", {}, unsafe=False)
    assert "--unsafe" in str(err.value) and "execute" in str(err.value)
    assert not marker.exists()
    assert load_model(tmp_path / "lam.keras", {}, unsafe=True) is not None
