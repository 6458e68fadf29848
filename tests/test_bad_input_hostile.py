"""Hostile and odd inputs through the real CLI, in the style of tests/test_bad_input.py: a named
pipe, a device or an over-long name where a file is expected, configs nested thousands deep or
saved by Windows Notepad, an unknown optimizer, models that store lambdas as bytecode or name
`os.system`, and upper-case suffixes. Every refusal is one paragraph, exit 2, no traceback, and
never "a bug in nandoc"; the processes run a few at a time in one module fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.test_bad_input import DATA, Case, _check, _csv, _healthy, _run, _toml

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _cfg(d: Path, text: str) -> list[str]:
    return ["check", "--config", str(_toml(d, text))]


def _model_cfg(d: Path, model: Path, text: str = DATA) -> str:
    return f'[model]\npath = "{model.as_posix()}"\n' + text


def _source_fifo(d: Path, m: dict[str, Path]) -> list[str]:
    _fifo(d / "data.py")
    return _cfg(d, _model_cfg(d, m["binary"], '[data]\nsource = "data.py:make"\n'))


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _npz_upper(d: Path) -> Path:
    rows = np.asarray([r[:3] for r in _rows()], dtype=np.float32)
    labels = np.asarray([r[3] for r in _rows()], dtype=np.float32)
    np.savez(d / "tmp.npz", x=rows, label=labels)
    (d / "tmp.npz").rename(d / "DATA.NPZ")
    return d / "DATA.NPZ"


def _rows():
    from tests.conftest import healthy_rows

    return healthy_rows(64)


def _deep_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _deep_h5(d: Path) -> Path:
    import h5py

    path = d / "deep.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["model_config"] = _deep_json(20_000)
    return path


def _deep_keras(d: Path) -> Path:
    path = d / "deep.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", _deep_json(100_000))
    return path


H = "[data]\npath = \"data.csv\"\ntarget = \"label\"\n"

CASES = [
    # --- what kind of file: refused before anything opens it ------------------------------
    Case("data-is-a-fifo", lambda d, m: _check(m["binary"], _fifo(d / "data.csv")),
         ("data file", "data.csv is a named pipe (FIFO), not a regular file",
          "more than once", "[data] path")),
    Case("validation-is-a-fifo",
         lambda d, m: (_healthy(d), _fifo(d / "val.csv"),
                       _cfg(d, _model_cfg(d, m["binary"], H + 'validation_path = "val.csv"\n'))
                       )[-1],
         ("validation file", "val.csv is a named pipe (FIFO)", "[data] validation_path")),
    Case("config-is-a-fifo", lambda d, m: ["check", "--config", str(_fifo(d / "nandoc.toml"))],
         ("config file", "nandoc.toml is a named pipe (FIFO), not a regular file", "--config")),
    Case("model-is-a-device",
         lambda d, m: (os.symlink("/dev/zero", d / "m.keras"), _check(d / "m.keras",
                                                                       _healthy(d)))[-1],
         ("model file", "m.keras is a character device", "[model] path")),
    Case("custom-objects-is-a-fifo",
         lambda d, m: _check(m["binary"], _healthy(d), "--custom-objects", _fifo(d / "l.py")),
         ("custom_objects file", "l.py is a named pipe (FIFO)", "--custom-objects")),
    Case("source-file-is-a-fifo", _source_fifo,
         ("data source file", "data.py is a named pipe (FIFO)", "[data] source")),
    Case("data-name-too-long", lambda d, m: _check(m["binary"], d / ("d" * 300 + ".csv")),
         ("data file path", "too long for this system", "the longest name in it 304",
          "[data] path")),
    Case("model-name-too-long",
         lambda d, m: _check(d / ("m" * 300 + ".keras"), _healthy(d)),
         ("model file path", "too long for this system", "[model] path")),
    Case("config-name-too-long",
         lambda d, m: ["check", "--config", str(d / ("c" * 300 + ".toml"))],
         ("config file path", "too long for this system", "--config")),
    Case("data-through-a-file", lambda d, m: _check(m["binary"], _healthy(d) / "x.csv"),
         ("goes through a file as if it were a folder", "data.csv is a file", "[data] path")),
    Case("config-through-a-file",
         lambda d, m: ["check", "--config", str(_healthy(d) / "nandoc.toml")],
         ("config file path", "goes through a file as if it were a folder")),
    Case("validation-file-missing",
         lambda d, m: (_healthy(d), _cfg(d, _model_cfg(
             d, m["binary"], H + 'validation_path = "val.csv"\n')))[-1],
         ("validation file", "val.csv does not exist", "[data] validation_path")),
    # --- configs -------------------------------------------------------------------------
    Case("toml-nested-10000-deep",
         lambda d, m: _cfg(d, "a = " + "[" * 10_000 + "]" * 10_000 + "\n"),
         ("nandoc.toml nests arrays or tables", "too deeply", "three levels")),
    Case("toml-utf16", lambda d, m: ["check", "--config", str(_csv(
        d, "[train]\nepochs = 2\n".encode("utf-16"), "nandoc.toml"))],
         ("nandoc.toml is not UTF-8", "UTF-16", "save it as UTF-8")),
    Case("toml-utf8-bom-is-read",  # the BOM is skipped: the value after it is checked
         lambda d, m: ["check", "--config", str(_csv(
             d, b"\xef\xbb\xbf[train]\nbatch_size = -4\n", "nandoc.toml"))],
         ("[train] batch_size is -4", "positive integer")),
    Case("optimizer-unknown-check",
         lambda d, m: (_healthy(d), _cfg(d, _model_cfg(d, m["binary"], H + '[train]\n'
                                                        'optimizer = "adamm"\n')))[-1],
         ("[train] optimizer is 'adamm'", "not a Keras optimizer name", "Did you mean 'adam'?",
          "rmsprop")),
    Case("optimizer-unknown-replay",
         lambda d, m: (_healthy(d), ["replay", "--config", str(_toml(d, _model_cfg(
             d, m["binary"], H + '[train]\noptimizer = "Adamm"\n')))])[-1],
         ("[train] optimizer is 'Adamm'", "Did you mean 'adam'?")),
    # --- model files ---------------------------------------------------------------------
    Case("keras-config-nested-deep", lambda d, m: _check(_deep_keras(d), _healthy(d)),
         ("deep.keras has a config.json nested 100,000 levels deep", "under 100",
          "not a model nandoc can read")),
    Case("h5-config-nested-deep", lambda d, m: _check(_deep_h5(d), _healthy(d)),
         ("deep.h5 has a model config nested 20,000 levels deep", "under 100")),
    Case("h5-lambda-activation", lambda d, m: _check(m["h5_lambda_act"], _healthy(d)),
         ("lambda function stored as Python bytecode", "the activation of layer 'dense'",
          "safe mode", "--unsafe", "--custom-objects")),
    Case("h5-lambda-activation-unsafe",
         lambda d, m: _check(m["h5_lambda_act"], _healthy(d), "--unsafe"),
         ("lambda function stored as Python bytecode", "cannot rebuild it, even with --unsafe")),
    Case("h5-lambda-loss", lambda d, m: _check(m["h5_lambda_loss"], _healthy(d)),
         ("compiled with a lambda as its loss", "'<lambda>'", "named loss function")),
    Case("keras-lambda-loss", lambda d, m: _check(m["keras_lambda_loss"], _healthy(d)),
         ("a lambda function (the model's loss)", "safe mode", "execute", "--unsafe")),
    Case("model-names-os-system", lambda d, m: _check(m["os_system"], _healthy(d)),
         ("refers to `os.system`", "not a Keras object or a custom object",
          "crafted to run commands", "does not load it")),
    Case("npz-object-array",
         lambda d, m: (np.savez(d / "d.npz", x=np.array([{"a": 1}, None], dtype=object),
                                label=np.zeros(2)), _check(m["binary"], d / "d.npz"))[-1],
         ("array 'x' holds Python objects", "dtype object", "unpickle", "np.savez")),
]

# Inputs that must work: nandoc reads them (exit 0 or 1), never refuses them.
ACCEPTED = [
    Case("upper-case-KERAS-and-NPZ",
         lambda d, m: ["check", str(_copy(m["binary"], d / "MODEL.KERAS")), str(_npz_upper(d)),
                       "--target", "label", "--steps", "0"], ()),
    Case("upper-case-H5",
         lambda d, m: ["check", str(_copy(m["binary_h5"], d / "model.H5")), str(_healthy(d)),
                       "--target", "label", "--steps", "0"], ()),
    Case("toml-bom-whole-run",
         lambda d, m: (_healthy(d), ["check", "--steps", "0", "--config", str(_csv(
             d, b"\xef\xbb\xbf" + _model_cfg(d, m["binary"], H).encode(), "nandoc.toml"))])[-1],
         ()),
]


def _lambda_models(d: Path, binary: Path) -> dict[str, Path]:
    import keras

    act = keras.Sequential([keras.Input((3,)),
                            keras.layers.Dense(1, activation=lambda t: t * 2, name="dense")])
    act.compile(optimizer="adam", loss="mse")
    act.save(d / "act.h5")
    loss = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    loss.compile(optimizer="adam", loss=lambda a, b: keras.ops.mean((a - b) ** 2))
    loss.save(d / "loss.h5")
    loss.save(d / "loss.keras")
    keras.saving.load_model(binary).save(d / "binary.h5")
    return {"h5_lambda_act": d / "act.h5", "h5_lambda_loss": d / "loss.h5",
            "keras_lambda_loss": d / "loss.keras", "binary_h5": d / "binary.h5"}


def _os_system_model(binary: Path, path: Path) -> Path:
    """The binary model with its loss replaced by a function of the os module."""
    with zipfile.ZipFile(binary) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == "config.json":
                config = json.loads(raw)
                config["compile_config"]["loss"] = {"module": "os", "class_name": "function",
                                                    "config": "system",
                                                    "registered_name": "function"}
                raw = json.dumps(config).encode()
            dst.writestr(info.filename, raw)
    return path


@pytest.fixture(scope="module")
def hostile_models(models, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile_models")
    out = dict(models)
    out.update(_lambda_models(d, models["binary"]))
    out["os_system"] = _os_system_model(models["binary"], d / "os_system.keras")
    return out


@pytest.fixture(scope="module")
def results(hostile_models, tmp_path_factory
            ) -> dict[str, subprocess.CompletedProcess]:
    jobs = {}
    for case in (*CASES, *ACCEPTED):
        d = tmp_path_factory.mktemp(case.id[:40])
        jobs[case.id] = (case.setup(d, hostile_models), d)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {cid: pool.submit(_run, args, d) for cid, (args, d) in jobs.items()}
        return {cid: f.result() for cid, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_exits_2_with_one_clear_paragraph(case: Case, results):
    res = results[case.id]
    err = res.stderr
    assert res.returncode == 2, (res.returncode, err, res.stdout[-2000:])
    assert err.startswith("nandoc: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "bug in nandoc" not in err
    assert "4wEAAAAA" not in err  # never the stored bytecode's base64
    assert len(err) < 1500, err
    for phrase in case.phrases:
        assert phrase in err, f"{phrase!r} not in: {err}"


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_odd_but_valid_input_is_read(case: Case, results):
    res = results[case.id]
    assert res.returncode in (0, 1), (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr
