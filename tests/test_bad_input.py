"""The bad-input matrix, end to end through the real CLI: every case exits 2 with one paragraph
on stderr that says what is wrong, where, and how to fix it; never a traceback.

Each case is a real `python -m nandoc` process. Nearly all of them are refused before
TensorFlow is imported (config, data, and the model file's saved config are checked first), so
they cost half a second each; the processes of the whole matrix run a few at a time in one
module fixture, and each case then asserts on its own result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import healthy_rows, write_csv

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
HEADER = ["a", "b", "c", "label"]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path, dict[str, Path]], list[str]]  # (folder, models) -> CLI arguments
    phrases: tuple[str, ...]  # all must appear in the message


def _csv(d: Path, text: str | bytes, name: str = "data.csv") -> Path:
    p = d / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _healthy(d: Path, name: str = "data.csv", n: int = 40) -> Path:
    return write_csv(d / name, HEADER, healthy_rows(n))


def _toml(d: Path, text: str) -> Path:
    p = d / "nandoc.toml"
    p.write_text(text)
    return p


def _check(model, data, *extra) -> list[str]:
    return ["check", str(model), str(data), "--target", "label", *map(str, extra)]


DATA = '[data]\npath = "data.csv"\ntarget = "label"\n'


def _cfg(d: Path, text: str, model: Path, *written: Path) -> list[str]:
    """`check --config` with [model] path = model; `written` are the data files it reads."""
    assert all(p.is_file() for p in written)
    return ["check", "--config", str(_toml(d, f'[model]\npath = "{model.as_posix()}"\n' + text))]


def _truncated(src: Path, dst: Path) -> Path:
    raw = src.read_bytes()
    dst.write_bytes(raw[: len(raw) // 2])
    return dst


CASES = [
    # --- files and folders ----------------------------------------------------------------
    Case("missing-model", lambda d, m: _check(d / "nope.keras", _healthy(d)),
         ("nope.keras does not exist", "[model] path", "MODEL argument")),
    Case("missing-data", lambda d, m: _check(m["binary"], d / "nope.csv"),
         ("nope.csv does not exist", "[data] path", "DATA argument")),
    Case("missing-config", lambda d, m: ["check", "--config", str(d / "nope.toml")],
         ("config file", "nope.toml does not exist", "nandoc init")),
    Case("config-is-a-folder", lambda d, m: ["check", "--config", str(d)],
         ("is a folder", "nandoc.toml")),
    Case("config-not-utf8", lambda d, m: ["check", "--config",
                                          str(_csv(d, b"\xff\xfe[model]\n", "nandoc.toml"))],
         ("nandoc.toml is not UTF-8", "save it as UTF-8")),
    Case("data-is-a-folder", lambda d, m: _check(m["binary"], d),
         ("is a folder", ".csv, .parquet or .npz")),
    Case("data-unknown-format", lambda d, m: _check(m["binary"], _csv(d, "x", "data.xlsx")),
         ("data.xlsx", "must end in .csv")),
    Case("model-unknown-format", lambda d, m: _check(_csv(d, "x", "model.pt"), _healthy(d)),
         ("model.pt", "must be .keras or .h5", "model.save()")),
    # --- broken model files ---------------------------------------------------------------
    Case("model-keras-truncated",
         lambda d, m: _check(_truncated(m["binary"], d / "m.keras"), _healthy(d)),
         ("m.keras is not a valid .keras archive", "truncated", "model.save('model.keras')")),
    Case("model-h5-truncated",
         lambda d, m: _check(_truncated(m["h5"], d / "m.h5"), _healthy(d)),
         ("m.h5 is a damaged HDF5 file", "truncated", "model.save('model.keras')")),
    Case("model-zip-not-a-model",
         lambda d, m: _check(_zip(d / "m.keras", {"notes.txt": "hi"}), _healthy(d)),
         ("m.keras is a zip archive but not a Keras model", "no config.json", "notes.txt")),
    Case("model-text-renamed-h5", lambda d, m: _check(_csv(d, "a,b\n1,2\n", "m.h5"), _healthy(d)),
         ("m.h5 is not an HDF5 file", "model.save")),
    Case("model-weights-only", lambda d, m: _check(m["weights"], _healthy(d)),
         ("weights only", "model.save_weights", "model.save('model.keras')")),
    Case("model-empty-file", lambda d, m: _check(_csv(d, b"", "m.keras"), _healthy(d)),
         ("m.keras is empty", "model.save")),
    Case("model-savedmodel-folder", lambda d, m: _check(_savedmodel(d), _healthy(d)),
         ("TensorFlow SavedModel folder", "model.save('model.keras')", "TFSMLayer")),
    Case("model-custom-object-missing", lambda d, m: _check(m["custom"], _healthy(d)),
         ("custom object 'shifted_mse'", "[model] custom_objects", "--custom-objects")),
    Case("custom-objects-file-missing",
         lambda d, m: _check(m["binary"], _healthy(d), "--custom-objects", d / "nope.py"),
         ("custom_objects file", "nope.py does not exist", "--custom-objects")),
    Case("custom-objects-file-broken",
         lambda d, m: _check(m["binary"], _healthy(d), "--custom-objects",
                             _csv(d, "import keras\nK = keras.backend\nK.log(1)\n", "l.py")),
         ("Importing the custom_objects file", "l.py failed at line 3", "keras.ops.log")),
    Case("model-lambda-safe-mode", lambda d, m: _check(m["lambda"], _healthy(d)),
         ("Lambda layer(s) 'double'", "safe mode", "execute", "--unsafe")),
    Case("model-several-inputs", lambda d, m: _check(m["two_inputs"], _healthy(d)),
         ("The model has 2 inputs ('a', 'b')", "[data] inputs = { a = ")),
    Case("model-several-outputs", lambda d, m: _check(m["two_outputs"], _healthy(d)),
         ("The model has 2 outputs ('p', 'q')", "[data] target = { p = ")),
    Case("inputs-unknown-name",
         lambda d, m: _cfg(d, DATA + 'inputs = { a = ["a", "b"], zz = ["c"] }\n',
                           m["two_inputs"], _healthy(d)),
         ("names the model input 'zz'", "its inputs are 'a', 'b'")),
    Case("npz-image-shape-misfit",
         lambda d, m: _check(m["conv2d"], _npz(d, x=np.zeros((4, 6, 6, 1)), label=np.zeros(4))),
         ("array 'x' has shape (4, 6, 6, 1)", "takes (None, 8, 8, 1)")),
    Case("image-folder-without-images",
         lambda d, m: _check(m["conv2d"], _image_classes(d)),
         ("no images", ".png")),
    # --- data files -----------------------------------------------------------------------
    Case("csv-empty", lambda d, m: _check(m["binary"], _csv(d, b"")),
         ("data.csv is empty", "no header and no rows", "column names on the first line")),
    Case("csv-blank-lines-only", lambda d, m: _check(m["binary"], _csv(d, "\n\n  \n")),
         ("data.csv holds only blank lines",)),
    Case("csv-header-only", lambda d, m: _check(m["binary"], _csv(d, "a,b,c,label\n")),
         ("data.csv has a header but no data rows", "Add the rows")),
    Case("csv-ragged-rows",
         lambda d, m: _check(m["binary"], _csv(d, "a,b,c,label\n1,2,3,0\n4,5,6,1,9\n")),
         ("data.csv could not be parsed", "line 3 has 5 fields", "header has 4 columns",
          "ragged rows", "Fix that row")),
    Case("csv-delimiter-mismatch",
         lambda d, m: _check(m["binary"], _csv(d, "a,b,c,label\n1;2;3;0\n4;5;6;1\n")),
         ("header of", "separated by commas but its rows by semicolons", "one delimiter")),
    Case("csv-space-separated",
         lambda d, m: _check(m["binary"], _csv(d, "a b c label\n1 2 3 0\n4 5 6 1\n")),
         ("separated by spaces", "comma, semicolon, tab or pipe", "to_csv")),
    Case("csv-unclosed-quote",
         lambda d, m: _check(m["binary"], _csv(d, 'a,b,c,label\n1,2,3,0\n"4,5,6,1\n')),
         ("data.csv could not be parsed", "unclosed quote")),
    Case("csv-old-mac-line-endings",
         lambda d, m: _check(m["binary"], _csv(d, b"a,b,c,label\r1,2,3,0\r4,5,6,1\r")),
         ("carriage return", "Convert the line endings")),
    Case("unknown-target", lambda d, m: _check(m["binary"], _healthy(d), "--target", "lable"),
         ("target column 'lable' is not in data.csv", "'a', 'b', 'c', 'label'",
          "Did you mean 'label'?")),
    Case("no-target", lambda d, m: ["check", str(m["binary"]), str(_healthy(d))],
         ("needs to know the target column of data.csv", "--target")),
    Case("unknown-feature",
         lambda d, m: _cfg(d, DATA + 'features = ["a", "bb", "c"]\n', m["binary"], _healthy(d)),
         ("feature column 'bb' is not in data.csv", "Did you mean 'b'?")),
    Case("text-target-for-numeric-loss",
         lambda d, m: _check(m["binary"], write_csv(d / "data.csv", HEADER, [
             [*r[:3], "yes" if r[3] else "no"] for r in healthy_rows(40)])),
         ("target column 'label' of data.csv holds text", "('yes', 'no': 40 of 40 cells)",
          "map it to numbers")),
    Case("text-feature-named",
         lambda d, m: _cfg(d, DATA + 'features = ["a", "b", "city"]\n', m["binary"], write_csv(
             d / "data.csv", ["a", "b", "city", "label"],
             [[r[0], r[1], "Paris", r[3]] for r in healthy_rows(40)])),
         ("feature column 'city' of data.csv holds text", "encode it as numbers")),
    Case("no-numeric-feature",
         lambda d, m: _check(m["binary"], _csv(d, "city,label\nParis,0\nLyon,1\n")),
         ("data.csv has no numeric feature column", "[data] features")),
    Case("feature-count-vs-model",
         lambda d, m: _check(m["binary"], write_csv(d / "data.csv", ["a", "b", "c", "e", "label"],
                                                    [[*r[:3], 1.0, r[3]] for r in healthy_rows()])),
         ("model expects 3 features per row but the data gives 4", "[data] features")),
    Case("window-length-vs-model",
         lambda d, m: _cfg(d, DATA + "[data.window]\nlength = 10\n", m["seq8"], _healthy(d)),
         ("[data.window] length is 10", "windows of 8 rows", "Make them equal")),
    Case("window-on-a-row-model",
         lambda d, m: _cfg(d, DATA + "[data.window]\nlength = 4\n", m["binary"], _healthy(d)),
         ("[data.window] is set", "takes single rows", "Remove [data.window]")),
    Case("window-longer-than-data",
         lambda d, m: _check(m["seq8"], _healthy(d, n=5)),
         ("training segment of data.csv has 5 rows", "fewer than one window of 8 rows",
          "Lower [data.window] length")),
    Case("validation-file-lacks-columns",
         lambda d, m: _cfg(d, DATA + 'validation_path = "val.csv"\n', m["binary"], _healthy(d),
                           _csv(d, "a,b,label\n1,2,0\n", "val.csv")),
         ("validation file val.csv lacks the column(s) 'c'", "same columns")),
    Case("npz-3d-array",
         lambda d, m: _check(m["binary"], _npz(d, x=np.zeros((4, 2, 3)), label=np.zeros(4))),
         ("array 'x' has shape (4, 2, 3)", "takes (None, 3)")),
    Case("npz-corrupt", lambda d, m: _check(m["binary"], _csv(d, b"PK\x03\x04junk", "d.npz")),
         ("d.npz is not a readable .npz archive", "np.savez")),
    Case("parquet-corrupt", lambda d, m: _check(m["binary"], _csv(d, b"PAR1junk", "d.parquet")),
         ("d.parquet could not be read as PARQUET", "complete")),
    # --- config and options ---------------------------------------------------------------
    Case("toml-syntax", lambda d, m: ["check", "--config", str(_toml(d, "[data\npath = 1\n"))],
         ("nandoc.toml is not valid TOML", "line 1", "Fix the syntax")),
    Case("toml-unknown-key",
         lambda d, m: ["check", "--config", str(_toml(d, "[train]\nbach_size = 3\n"))],
         ("[train] has an unknown key 'bach_size'", "batch_size", "Fix the spelling")),
    Case("toml-unknown-section",
         lambda d, m: ["check", "--config", str(_toml(d, "[trian]\nepochs = 3\n"))],
         ("unknown section(s) [trian]", "[model], [data], [data.window] and [train]")),
    Case("toml-wrong-type",
         lambda d, m: ["check", "--config", str(_toml(d, '[train]\nbatch_size = "32"\n'))],
         ("[train] batch_size must be an integer", "not '32'", "batch_size = 32")),
    Case("toml-empty-path",
         lambda d, m: ["check", "--config", str(_toml(d, '[data]\npath = ""\n'))],
         ("[data] path is empty", "relative to the config's folder")),
    Case("negative-batch-size",
         lambda d, m: ["check", "--config", str(_toml(d, "[train]\nbatch_size = -4\n"))],
         ("[train] batch_size is -4", "positive integer")),
    Case("validation-split-above-1",
         lambda d, m: ["check", "--config", str(_toml(d, "[data]\nvalidation_split = 1.5\n"))],
         ("[data] validation_split is 1.5", "below 1")),
    Case("validation-split-negative",
         lambda d, m: ["check", "--config", str(_toml(d, "[data]\nvalidation_split = -0.1\n"))],
         ("[data] validation_split is -0.1", "at least 0")),
    Case("split-and-validation-file",
         lambda d, m: ["check", "--config", str(_toml(
             d, '[data]\nvalidation_split = 0.2\nvalidation_path = "v.csv"\n'))],
         ("sets both validation_split and validation_path", "keep one")),
    Case("learning-rate-not-finite",
         lambda d, m: ["check", "--config", str(_toml(d, "[train]\nlearning_rate = inf\n"))],
         ("[train] learning_rate is inf", "must be positive (and finite)")),
    Case("window-label-unknown",
         lambda d, m: ["check", "--config", str(_toml(d, '[data.window]\nlabel = "mean"\n'))],
         ("[data.window] label is 'mean'", '"last"')),
    Case("negative-seed",
         lambda d, m: _check(m["binary"], _healthy(d), "--seed", "-1"),
         ("--seed is -1", "0 to 2**32 - 1", "--seed 0")),
    Case("nothing-to-check", lambda d, m: ["check"],
         ("Nothing to check", "nandoc.toml", "nandoc init")),
    Case("explain-unknown-cause", lambda d, m: ["explain", "no-such-cause"],
         ("Unknown cause 'no-such-cause'", "nandoc explain")),
]


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def _savedmodel(d: Path) -> Path:
    folder = d / "exported"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    return folder


def _image_classes(d: Path) -> Path:
    for name in ("cats", "dogs"):
        (d / "images" / name).mkdir(parents=True, exist_ok=True)
        (d / "images" / name / "notes.txt").write_text("not an image")
    return d / "images"


def _npz(d: Path, **arrays) -> Path:
    np.savez(d / "d.npz", **arrays)
    return d / "d.npz"


@pytest.fixture(scope="module")
def matrix_models(models, tmp_path_factory) -> dict[str, Path]:
    """The session's tiny models plus the unusual ones this matrix needs."""
    import keras

    d = tmp_path_factory.mktemp("matrix_models")
    out = dict(models)
    binary = keras.saving.load_model(models["binary"])
    binary.save(d / "binary.h5")
    out["h5"] = d / "binary.h5"
    binary.save_weights(d / "binary.weights.h5")
    out["weights"] = d / "binary.weights.h5"

    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2, name="double"),
                            keras.layers.Dense(1, activation="sigmoid")])
    lam.compile(optimizer="adam", loss="binary_crossentropy")
    lam.save(d / "lambda.keras")
    out["lambda"] = d / "lambda.keras"

    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    h = keras.layers.Concatenate()([a, b])
    two_in = keras.Model([a, b], keras.layers.Dense(1, activation="sigmoid")(h))
    two_in.compile(optimizer="adam", loss="binary_crossentropy")
    two_in.save(d / "two_inputs.keras")
    out["two_inputs"] = d / "two_inputs.keras"

    x = keras.Input((3,))
    h = keras.layers.Dense(4)(x)
    heads = [keras.layers.Dense(1, name="p")(h), keras.layers.Dense(1, name="q")(h)]
    two_out = keras.Model(x, heads)
    two_out.compile(optimizer="adam", loss=["mse", "mse"])
    two_out.save(d / "two_outputs.keras")
    out["two_outputs"] = d / "two_outputs.keras"

    conv = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
    conv.compile(optimizer="adam", loss="mse")
    conv.save(d / "conv2d.keras")
    out["conv2d"] = d / "conv2d.keras"

    def shifted_mse(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred + 1.0))

    custom = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    custom.compile(optimizer="adam", loss=shifted_mse)
    custom.save(d / "custom.keras")
    out["custom"] = d / "custom.keras"
    return out


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def results(matrix_models, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess,
                                                                 Path]]:
    """Every case's process, run three at a time (most never import TensorFlow)."""
    jobs = {}
    for case in CASES:
        d = tmp_path_factory.mktemp(case.id)
        jobs[case.id] = (case.setup(d, matrix_models), d)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {cid: pool.submit(_run, args, d) for cid, (args, d) in jobs.items()}
        return {cid: (f.result(), jobs[cid][1]) for cid, f in futures.items()}


def test_the_matrix_is_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_clear_paragraph(case: Case, results):
    res, _ = results[case.id]
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err, res.stdout[-2000:])
    assert err.startswith("nandoc: error: "), err
    assert len(err.strip().splitlines()) == 1, err  # one paragraph: no blank line, no log
    assert "Traceback" not in err and "I0000" not in err and "WARNING" not in err
    assert res.stdout == ""
    for phrase in case.phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their permissions")
def test_unreadable_data_file(tmp_path, models):
    data = _healthy(tmp_path)
    data.chmod(0)
    try:
        res = _run(_check(models["binary"], data), tmp_path)
    finally:
        data.chmod(0o644)
    assert res.returncode == 2 and res.stderr.startswith("nandoc: error: ")
    assert "could not be read" in res.stderr and "permissions" in res.stderr


def test_an_internal_error_is_one_paragraph_that_says_where_the_crash_log_is(tmp_path,
                                                                              monkeypatch):
    """For the CLI's last-resort handler: a bug is not the user's fault, and says so."""
    import tempfile

    from nandoc.errors import crash_report

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    try:
        raise ValueError("boom\nat a second line")
    except ValueError as exc:
        message = crash_report(exc, "nandoc check model.keras data.csv")
    assert len(message.splitlines()) == 1
    assert "internal error (ValueError: boom at a second line)" in message
    assert "bug in nandoc, not a problem with your files" in message
    [log] = list(tmp_path.glob("nandoc-crash-*.log"))
    assert str(log) in message
    text = log.read_text()
    assert text.startswith("nandoc crash log: nandoc check model.keras data.csv")
    assert "keras " in text and "polars " in text and "Traceback" in text and "boom" in text
