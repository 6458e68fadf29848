"""Data detectors on real CSV files and real saved models, run through `nandoc check` in-process:
each fires on its pathology with the right location and stays silent on healthy data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nandoc.config import Config, WindowConfig
from nandoc.drivers.check import check
from tests.conftest import healthy_rows, write_csv


def run(model: Path | None, data: Path, **cfg):
    cfg.setdefault("target", ("label",))
    return check(Config(model_path=model, data_path=data, **cfg))


def causes(report, cause):
    return [f for f in report.findings if f.cause == cause]


# --- data-nonfinite ---------------------------------------------------------------------------

def test_data_nonfinite_fires_with_columns_rows_and_lines(tmp_path, models):
    rows = healthy_rows()
    rows[4][1] = ""  # row 5, column b: empty
    rows[9][1] = "#VALUE!"  # row 10: text
    rows[19][0] = "inf"  # row 20, column a
    rows[29][3] = "nan"  # row 30, the target
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    report = run(models["binary"], p)
    found = {f.location.column: f for f in causes(report, "data-nonfinite")}
    assert set(found) == {"a", "b", "label"}
    b = found["b"]
    assert b.location.rows == (5, 10) and b.location.lines == (6, 11)
    assert "'#VALUE!'" in b.evidence and b.measured["text"] == 1 and b.measured["missing"] == 1
    assert found["a"].measured["inf"] == 1 and found["label"].measured["nan"] == 1
    assert report.findings[0].cause == "data-nonfinite"  # data ranks first


def test_data_nonfinite_ignores_columns_the_model_does_not_read(tmp_path, models):
    rows = [[*r, "" if i == 3 else "note"] for i, r in enumerate(healthy_rows())]
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label", "comment"], rows)
    assert causes(run(models["binary"], p), "data-nonfinite") == []


# --- data-unscaled ----------------------------------------------------------------------------

def _scaled_rows(factor_c: float):
    rows = healthy_rows()
    return [[a, b, round(c * factor_c, 2), y] for a, b, c, y in rows]


@pytest.mark.parametrize("factor, severity, basis", [(1e20, "error", "measured"),
                                                     (1e5, "warning", "static")],
                         ids=["overflow-error", "large-warning"])
def test_data_unscaled_fires(tmp_path, models, factor, severity, basis):
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], _scaled_rows(factor))
    [f] = causes(run(models["binary"], p), "data-unscaled")  # one finding: measured wins
    assert f.severity.value == severity and f.location.column == "c"
    assert f.basis == basis


def test_data_unscaled_static_lists_every_large_column(tmp_path):
    from nandoc.checks.data.unscaled import unscaled
    from nandoc.loading.dataset import build_dataset
    from nandoc.loading.table import ScannedFile, open_table, scan_table

    rows = [[round(a * 1e6, 1), b, round(c * 1e20, 1), y] for a, b, c, y in healthy_rows()]
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    table = open_table(p)
    scan = scan_table(table)
    ds = build_dataset(table, scan, Config(data_path=p, target=("label",)), None)
    [f] = unscaled(scan=[ScannedFile(table, scan, "data")], data=ds, model=None)
    assert [c["column"] for c in f.measured["columns"]] == ["c", "a"]
    assert f.basis == "static" and f.severity.value == "error"


def test_data_unscaled_silent_on_scaled_data(healthy_csv, models):
    assert causes(run(models["binary"], healthy_csv), "data-unscaled") == []


def test_data_unscaled_silent_when_the_model_normalizes_its_input(tmp_path):
    import keras

    rows = _scaled_rows(1e6)
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    x = np.array([r[:3] for r in rows], dtype="float32")
    norm = keras.layers.Normalization()
    norm.adapt(x)
    m = keras.Sequential([keras.Input((3,)), norm, keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(tmp_path / "m.keras")
    assert causes(run(tmp_path / "m.keras", p), "data-unscaled") == []


# --- label-out-of-range -----------------------------------------------------------------------

def test_binary_labels_outside_0_1(tmp_path, models):
    rows = healthy_rows()
    rows[6][3] = 2
    rows[40][3] = -1
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    [f] = causes(run(models["binary"], p), "label-out-of-range")
    assert f.location.rows == (7, 41) and f.measured["bad_values"] == [-1.0, 2.0]


def test_labels_of_a_validation_file_are_located_in_that_file(tmp_path, healthy_csv, models):
    rows = healthy_rows()[:20]
    rows[2][3] = 2  # row 3 of val.csv
    val = write_csv(tmp_path / "val.csv", ["a", "b", "c", "label"], rows)
    [f] = causes(run(models["binary"], healthy_csv, validation_path=val), "label-out-of-range")
    assert (f.location.file, f.location.rows) == ("val.csv", (3,))
    both = healthy_rows()
    both[6][3] = 2  # row 7 of data.csv as well: its rows are shown, the count says the rest
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], both)
    [f] = causes(run(models["binary"], data, validation_path=val), "label-out-of-range")
    assert (f.location.file, f.location.rows, f.measured["count"]) == ("data.csv", (7,), 2)
    assert "(1 more in val.csv)" in f.evidence


@pytest.mark.parametrize("label, fires", [(3, True), (-1, True), (1.5, True), (2, False)],
                         ids=["id-eq-width", "negative", "non-integer", "in-range"])
def test_sparse_class_ids(tmp_path, models, label, fires):
    rows = healthy_rows()
    rows[11][3] = label
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    found = causes(run(models["sparse3"], p), "label-out-of-range")
    assert bool(found) is fires
    if fires:
        assert found[0].location.rows == (12,) and "0..2" in found[0].title


def test_categorical_with_class_ids_instead_of_one_hot(healthy_csv, models):
    [f] = causes(run(models["categorical3"], healthy_csv), "label-out-of-range")
    assert "one-hot" in f.evidence and f.measured["output_width"] == 3


def test_negative_targets_into_msle(tmp_path, models):
    rows = [[a, b, c, round(a * 3, 3)] for a, b, c, _ in healthy_rows()]
    p = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], rows)
    [f] = causes(run(models["msle"], p), "label-out-of-range")
    assert "clamps" in f.evidence
    assert causes(run(models["mse"], p), "label-out-of-range") == []


def test_labels_silent_on_healthy_data(healthy_csv, models):
    assert causes(run(models["binary"], healthy_csv), "label-out-of-range") == []
    assert causes(run(models["sparse3"], healthy_csv), "label-out-of-range") == []


# --- empty-validation -------------------------------------------------------------------------

def test_empty_validation_when_the_segment_is_shorter_than_a_window(healthy_csv, models):
    report = run(models["seq8"], healthy_csv, validation_split=0.05)  # 6 rows < 8
    [f] = causes(report, "empty-validation")
    assert f.measured == {"validation_rows": 6, "window": 8, "validation_samples": 0}
    assert "fewer than one window of 8 rows" in f.evidence


def test_empty_validation_when_the_validation_file_has_no_rows(tmp_path, healthy_csv, models):
    val = write_csv(tmp_path / "val.csv", ["a", "b", "c", "label"], [])
    [f] = causes(run(models["binary"], healthy_csv, validation_path=val), "empty-validation")
    assert "val.csv has no data rows" in f.evidence and f.location.name == "validation_path"


def test_validation_silent_when_windows_fit(healthy_csv, models):
    report = run(models["seq8"], healthy_csv, validation_split=0.2,
                 window=WindowConfig(length=8))
    assert causes(report, "empty-validation") == []
    assert report.inputs["validation_samples"] == 17


# --- a healthy model and dataset ----------------------------------------------------------------

def test_healthy_inputs_give_no_error(healthy_csv, models):
    report = run(models["binary"], healthy_csv, validation_split=0.2)
    assert [f for f in report.findings if f.severity.value == "error"] == []
    assert report.failed_checks() == []
