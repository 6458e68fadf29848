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


# -- shards: a glob of CSV or parquet files read as one table ---------------------------------


def write_shards(folder, names, rows_each=(40, 30, 50), seed=0):
    """Parquet (or CSV, by the name) shards with the columns a, b, c, label."""
    import polars as pl

    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, n) in enumerate(zip(names, rows_each, strict=True)):
        rows = healthy_rows(n, seed=seed + i)
        if name.endswith(".csv"):
            write_csv(folder / name, ["a", "b", "c", "label"], rows)
        else:
            pl.DataFrame(rows, schema=["a", "b", "c", "label"], orient="row").write_parquet(
                folder / name)


def test_init_proposes_a_subfolder_of_shards_as_a_glob_and_check_reads_it(tmp_path, models):
    from nandoc.drivers.check import check

    shutil.copy(models["binary"], tmp_path / "model.keras")
    write_shards(tmp_path / "data", ["part-1.parquet", "part-2.parquet", "part-10.parquet"])
    write_shards(tmp_path / "val", ["part-1.parquet", "part-2.parquet"], (20, 20), seed=7)
    # An image folder (a subfolder per class) is never shards, whatever lies beside its classes.
    write_shards(tmp_path / "photos", ["labels-1.csv", "labels-2.csv"], (5, 5))
    (tmp_path / "photos" / "cat").mkdir()
    (tmp_path / "photos" / "cat" / "1.png").write_bytes(b"\x89PNG")
    path, p = write_config(tmp_path)
    text = path.read_text()
    raw = tomllib.loads(text)
    assert raw["data"]["path"] == "data/part-*.parquet" and raw["data"]["target"] == "label"
    assert raw["data"]["validation_path"] == "val/part-*.parquet"
    assert p.n_rows == 40 + 30 + 50 and p.features == ("a", "b", "c")
    assert ("# 3 parquet shards (part-1.parquet ... part-10.parquet) read in natural order; "
            "120 rows, 4 columns") in text
    assert "photos" not in text and p.other_data == ()
    cfg = load_config(path)
    assert cfg.data_path == tmp_path / "data" / "part-*.parquet"
    report = check(cfg)
    assert report.failed_checks() == [] and report.status == "clean", \
        [f.title for f in report.findings]
    assert any("3 parquet shard(s) read in order: part-1.parquet, part-2.parquet, "
               "part-10.parquet" in n for n in report.inputs.get("data_notes", [])), \
        report.inputs


def test_init_groups_numbered_files_here_into_a_glob_and_keeps_the_others(tmp_path):
    write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows(10))
    old = time.time() - 3600
    os.utime(tmp_path / "data.csv", (old, old))
    write_shards(tmp_path, ["shard_002.csv", "shard_010.csv", "shard_001.csv"])
    write_csv(tmp_path / "run3.csv", ["a", "b", "c", "label"], healthy_rows(10))  # one: a file
    os.utime(tmp_path / "run3.csv", (old, old))
    p = plan(tmp_path)
    assert p.data == tmp_path / "shard_*.csv" and p.n_rows == 120
    assert [f.name for f in p.shards(p.data).files] == [
        "shard_001.csv", "shard_002.csv", "shard_010.csv"]
    text = write_config(tmp_path)[0].read_text()
    assert 'path = "shard_*.csv"  # the newest of 3 data files here; 3 csv shards' in text
    assert '# path = "data.csv"  # another data file here' in text
    assert '# path = "run3.csv"  # another data file here' in text
    # shards of two kinds in one folder: one glob per kind, the newest proposed
    write_shards(tmp_path / "mixed", ["p-1.csv", "p-2.csv"], (5, 5))
    for f in (tmp_path / "mixed").iterdir():
        os.utime(f, (old, old))
    write_shards(tmp_path / "mixed", ["p-1.parquet", "p-2.parquet"], (5, 5))
    for f in tmp_path.glob("*.csv"):
        f.unlink()
    p = plan(tmp_path)
    assert p.data == tmp_path / "mixed" / "p-*.parquet"
    assert p.other_data == (tmp_path / "mixed" / "p-*.csv",)
    # numbered files whose glob would take another file here too (`*.csv`) stay files
    write_shards(tmp_path / "bare", ["1.csv", "2.csv", "all.csv"], (5, 5, 5))
    (tmp_path / "bare" / "sub").mkdir()  # not a folder of shards: init looks at bare/ itself
    p = plan(tmp_path / "bare")
    assert p.shard_sets == () and p.data.name in ("1.csv", "2.csv", "all.csv")


def test_cli_init_proposes_the_shards(tmp_path, models):
    import subprocess
    import sys

    shutil.copy(models["binary"], tmp_path / "model.keras")
    write_shards(tmp_path / "data", ["part-0.csv", "part-1.csv", "part-2.csv"])
    r = subprocess.run([sys.executable, "-m", "nandoc", "init", str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "data    data/part-*.csv (3 csv shards)" in r.stdout
    raw = tomllib.loads((tmp_path / "nandoc.toml").read_text())
    assert raw["data"]["path"] == "data/part-*.csv"


def test_init_warns_when_the_shards_do_not_share_their_columns(tmp_path):
    write_shards(tmp_path / "data", ["part-1.csv", "part-2.csv"], (5, 5))
    write_csv(tmp_path / "data" / "part-3.csv", ["a", "b", "label"], [[1, 2, 0]])
    path, p = write_config(tmp_path)
    assert p.data == tmp_path / "data" / "part-*.csv"
    [warning] = p.warnings
    assert warning.startswith("the data shards could not be read") and "part-3.csv" in warning
    assert tomllib.loads(path.read_text())["data"]["path"] == "data/part-*.csv"


# --- image folders ----------------------------------------------------------------------------

def _images(root, classes=("cats", "dogs"), n=4):
    import tensorflow as tf

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = np.full((8, 8, 3), 40 * k + i, np.uint8)
            (root / name / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("image_model") / "model.keras"
    model.save(path)
    return path


def test_init_proposes_train_and_val_image_folders_and_check_reads_them(tmp_path, image_model):
    from nandoc.drivers.check import check

    shutil.copy(image_model, tmp_path / "model.keras")
    for split in ("train", "val", "test"):
        _images(tmp_path / "images" / split)
    path, p = write_config(tmp_path)
    assert (p.images.train, p.images.validation) == (tmp_path / "images" / "train",
                                                     tmp_path / "images" / "val")
    text = path.read_text()
    raw = tomllib.loads(text)["data"]
    assert (raw["path"], raw["validation_path"]) == ("images/train", "images/val")
    assert "2 class subfolders (cats, dogs), 8 images" in text and "target" not in raw
    report = check(load_config(path), steps=0)
    assert report.failed_checks() == [] and report.status == "clean", report.findings
    data = report.inputs
    assert (data["train_samples"], data["validation_samples"]) == (8, 8), data


def test_init_prefers_an_image_folder_for_a_model_of_images_and_lists_the_csv(tmp_path,
                                                                               image_model):
    shutil.copy(image_model, tmp_path / "model.keras")
    _images(tmp_path / "photos")
    write_csv(tmp_path / "data.csv", ["a", "b", "label"], [[1, 2, 0]])
    p = plan(tmp_path)
    assert p.images.train == tmp_path / "photos" and p.images.validation is None
    text = write_config(tmp_path)[0].read_text()
    assert 'path = "photos"' in text and '# path = "data.csv"' in text
    assert "validation_split = 0.2" in text


def test_init_keeps_to_tables_for_a_model_of_rows_next_to_an_image_folder(tmp_path, models):
    folder = folder_with(tmp_path, models["binary"])
    _images(folder / "photos")
    p = plan(folder)
    assert p.images is None and p.data == folder / "data.csv"
