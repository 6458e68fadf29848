"""`nandoc init`: the guesses it writes, the config it writes runs cleanly, it never overwrites."""

from __future__ import annotations

import os
import shutil
import time
import tomllib

import numpy as np
import pytest

from nandoc.config import load_config
from nandoc.errors import ConfigError
from nandoc.init import guess_target, plan, read_model_facts, write_config
from tests.conftest import healthy_rows, write_csv


def folder_with(tmp_path, model_path, header=("a", "b", "c", "label"), rows=None, name="data"):
    shutil.copy(model_path, tmp_path / "model.keras")
    write_csv(tmp_path / f"{name}.csv", list(header), rows or healthy_rows())
    return tmp_path


def test_init_writes_a_config_that_check_runs_cleanly(tmp_path, models):
    from nandoc.drivers.check import check

    folder = folder_with(tmp_path, models["binary"])
    path, p = write_config(folder)
    assert path == folder / "nandoc.toml"
    text = path.read_text()
    assert 'target = "label"  # GUESSED: a column named \'label\'' in text
    assert "batch_size = 32" in text and "validation_split = 0.2" in text
    raw = tomllib.loads(text)
    assert raw["model"]["path"] == "model.keras" and raw["data"]["path"] == "data.csv"
    report = check(load_config(path))
    assert report.status == "clean", [f.title for f in report.findings]
    assert report.failed_checks() == []
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_init_takes_the_window_from_the_model_input(tmp_path, models):
    from nandoc.drivers.check import check

    folder = folder_with(tmp_path, models["seq8"], rows=healthy_rows(200))
    path, p = write_config(folder)
    assert p.window == 8 and p.facts.input_shape == (None, 8, 3)
    raw = tomllib.loads(path.read_text())
    assert raw["data"]["window"] == {"length": 8, "stride": 1, "label": "last"}
    assert "from the model's input shape (None, 8, 3)" in path.read_text()
    report = check(load_config(path))
    assert report.failed_checks() == [] and report.status == "clean"


def test_init_raises_the_validation_split_to_hold_one_window(tmp_path, models):
    folder = folder_with(tmp_path, models["seq8"], rows=healthy_rows(30))
    p = plan(folder)
    assert p.validation_split * 30 >= 8 and "at least one window" in p.validation_rule


@pytest.mark.parametrize("columns, expected, rule", [
    (("x1", "x2", "Target"), ("Target",), "named 'Target'"),
    (("y", "x1"), ("y",), "named 'y'"),
    (("label_smooth", "x"), ("label_smooth",), "named like a target"),
    (("f1", "f2", "price"), ("price",), "the LAST column 'price'"),
])
def test_target_guess_says_which_rule_picked_it(columns, expected, rule):
    target, why = guess_target(columns)
    assert target == expected and rule in why


def test_init_never_overwrites_without_force(tmp_path, models):
    folder = folder_with(tmp_path, models["binary"])
    (folder / "nandoc.toml").write_text("# mine\n")
    with pytest.raises(ConfigError, match="already exists.*--force"):
        write_config(folder)
    assert (folder / "nandoc.toml").read_text() == "# mine\n"
    write_config(folder, force=True)
    assert "GUESSED" in (folder / "nandoc.toml").read_text()


def test_init_picks_the_newest_files_and_lists_the_others(tmp_path, models):
    folder = folder_with(tmp_path, models["binary"])
    write_csv(folder / "old.csv", ["a", "b", "c", "label"], healthy_rows(10))
    old = time.time() - 3600
    os.utime(folder / "old.csv", (old, old))
    write_csv(folder / "val.csv", ["a", "b", "c", "label"], healthy_rows(10))
    p = plan(folder)
    assert p.data.name == "data.csv" and p.validation_file.name == "val.csv"
    text = (write_config(folder)[0]).read_text()
    assert '# path = "old.csv"  # another data file here' in text
    assert 'validation_path = "val.csv"' in text
    assert load_config(folder / "nandoc.toml").validation_path == folder / "val.csv"


def weighted_bce(y_true, y_pred):  # saved by name in the model's config; never imported by init
    import keras

    return keras.ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))


def test_init_lists_custom_object_files_without_importing_them(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=weighted_bce)
    model.save(tmp_path / "model.keras")
    write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows(20))
    # Importing losses.py would exit (its decorator runs at import), yet it does no top-level
    # work by init's rule, so it is listed; plots.py runs code at import and is not suggested.
    (tmp_path / "losses.py").write_text("import sys\n\n\n@sys.exit\n"
                                        "def weighted_bce(y_true, y_pred):\n    return 0\n")
    (tmp_path / "plots.py").write_text("raise SystemExit('imported!')\n")
    (tmp_path / "helpers.py").write_text("def unrelated():\n    return 1\n")
    facts = read_model_facts(tmp_path / "model.keras")
    assert facts.custom == ("weighted_bce",) and facts.loss == "weighted_bce"
    path, p = write_config(tmp_path)
    raw = tomllib.loads(path.read_text())
    assert raw["model"]["custom_objects"] == ["losses.py"]
    assert '# custom_objects = ["helpers.py"]  # a Python file here' in path.read_text()
    assert ("# plots.py: a Python file here; the model does not name anything in it, and it "
            "runs code when imported (line 1: raise SystemExit('imported!'))") in path.read_text()
    assert '["plots.py"]' not in path.read_text()


def test_init_on_a_folder_without_model_or_data_explains(tmp_path):
    with pytest.raises(ConfigError, match="found no model .* and no data"):
        write_config(tmp_path)
    assert not (tmp_path / "nandoc.toml").exists()


def test_init_with_data_only_writes_the_data_section(tmp_path):
    np.savez(tmp_path / "arrays.npz", x=np.zeros((10, 2)), y=np.ones(10))
    path, p = write_config(tmp_path)
    raw = tomllib.loads(path.read_text())
    assert "path" not in raw["model"] and raw["data"]["target"] == "y"


def test_init_reads_a_messy_csv_as_check_reads_it(tmp_path):
    """A gzip-compressed CSV with a comment line, spaces after the commas and decimal commas:
    init finds it, strips the names, counts every row and sees the numeric columns."""
    import gzip

    text = "# exported 2026-11-30\nx1; x2; city; label\n" + "".join(
        f"{i},5; {i * 2},25; Köln; {i % 2}\n" for i in range(30))
    (tmp_path / "data.CSV.GZ").write_bytes(gzip.compress(text.encode("utf-8")))
    (tmp_path / "notes.txt").write_text("not data\n")
    p = plan(tmp_path)
    assert p.data == tmp_path / "data.CSV.GZ"
    assert p.columns == ("x1", "x2", "city", "label") and p.target == ("label",)
    assert p.features == ("x1", "x2") and p.n_rows == 30
