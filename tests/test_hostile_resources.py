"""Hostile files cannot exhaust memory or hang nandoc.

The memory cases run the real CLI under a small wrapper that reports the child's peak RSS:
a 1 MB .keras whose config.json inflates to 1 GiB, a .keras whose weights member declares
1 GiB of zeros, and a few-MB .npz that holds a 30000 x 4096 float64 array are all refused from
the files' bytes, before TensorFlow is imported, well under 1 GiB. The in-process cases pin the
pieces: the path checks, the bounded config read, the nesting depth, the optimizer names
(against what Keras itself accepts), the npz header check.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nandoc.config import KERAS_OPTIMIZERS, load_config, parse_config
from nandoc.errors import ConfigError, CustomObjectsError, DataError, ModelLoadError
from nandoc.loading import archive
from nandoc.loading.array_data import check_npz
from nandoc.loading.model_code import foreign_names, stored_code
from nandoc.paths import require_file
from tests.test_bad_input import ENV, _healthy

GiB = 2**30
RSS_LIMIT_KB = 1024 * 1024  # 1 GiB in ru_maxrss units (KiB on Linux)
WRAPPER = """
import json, resource, subprocess, sys
res = subprocess.run([sys.executable, "-m", "nandoc", *sys.argv[1:]], capture_output=True,
                     text=True, timeout=600)
print(json.dumps({"rc": res.returncode, "stderr": res.stderr,
                  "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _measured(args: list[str], cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, env=ENV,
                         capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stream_member(z: zipfile.ZipFile, name: str, head: bytes, filler: bytes, total: int,
                   tail: bytes = b"") -> None:
    """Write a member of `total` bytes without holding it in memory."""
    chunk = filler * (2**20 // len(filler))
    with z.open(name, "w", force_zip64=True) as fh:
        fh.write(head)
        left = total - len(head) - len(tail)
        while left > 0:
            fh.write(chunk[:left])
            left -= len(chunk)
        fh.write(tail)


def _config_bomb(path: Path) -> Path:
    """A .keras whose config.json is 1 GiB of JSON (mostly blanks), about 1 MB on disk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        _stream_member(z, "config.json", b'{"a":', b" ", GiB, b'1}')
    return path


def _weights_bomb(model: Path, path: Path) -> Path:
    """A real model's config with a weights member declaring 1 GiB of zeros."""
    with zipfile.ZipFile(model) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("config.json", src.read("config.json"))
        z.writestr("metadata.json", src.read("metadata.json"))
        _stream_member(z, "model.weights.h5", b"\x89HDF\r\n\x1a\n", b"\0", GiB)
    return path


def _npz_bomb(path: Path, shape=(30000, 4096)) -> Path:
    """np.zeros(shape) float64 in an npz, streamed (never held in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f8", "fortran_order": False, "shape": shape})
            left = int(np.prod(shape)) * 8
            zeros = bytes(2**20)
            while left > 0:
                fh.write(zeros[:left])
                left -= len(zeros)
        with z.open("label.npy", "w") as fh:
            np.lib.format.write_array(fh, np.zeros(shape[0], dtype=np.float32))
    return path


@pytest.fixture(scope="module")
def measured(models, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    d = tmp_path_factory.mktemp("hostile_resources")
    data = _healthy(d)
    jobs = {
        "config-bomb": ["check", str(_config_bomb(d / "config_bomb.keras")), str(data),
                        "--target", "label"],
        "weights-bomb": ["check", str(_weights_bomb(models["binary"], d / "weights.keras")),
                         str(data), "--target", "label"],
        "npz-bomb": ["check", str(models["binary"]), str(_npz_bomb(d / "bomb.npz")),
                     "--target", "label"],
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {k: pool.submit(_measured, args, d) for k, args in jobs.items()}
        return {k: (f.result(), d) for k, f in futures.items()}


@pytest.mark.parametrize("case, phrases", [
    ("config-bomb", ("config_bomb.keras is not a model nandoc can read",
                     "member 'config.json' declares 1.0 GiB", "zip bomb",
                     "model.save('model.keras')")),
    ("weights-bomb", ("member 'model.weights.h5' declares 1.0 GiB", "zip bomb")),
    ("npz-bomb", ("array 'x' has shape (30000, 4096) and dtype float64", "937.5 MiB",
                  "Save fewer samples", "[data] source")),
])
def test_a_bomb_is_refused_from_its_bytes_under_1_gib(case, phrases, measured):
    res, d = measured[case]
    err = res["stderr"]
    assert res["rc"] == 2, err
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1, err
    for phrase in phrases:
        assert phrase in err, f"{phrase!r} not in {err}"
    assert res["rss_kb"] < RSS_LIMIT_KB, f"peak RSS {res['rss_kb'] / 1024:.0f} MiB: {err}"
    assert res["rss_kb"] < 450 * 1024, "refused before TensorFlow was imported"


# -- paths ---------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_special_files_are_refused_before_they_are_opened(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"data.csv is a named pipe \(FIFO\), not a regular "
                                        r"file: nandoc reads its inputs more than once"):
        require_file(fifo, "data file", DataError, fix="Fix it.")
    with pytest.raises(ModelLoadError, match="is a character device"):
        require_file(Path("/dev/null"), "model file", ModelLoadError, fix="Fix it.")
    sock_path = tmp_path / "s.py"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(CustomObjectsError, match="s.py is a socket"):
            require_file(sock_path, "custom_objects file", CustomObjectsError, fix="Fix it.")
    with pytest.raises(DataError, match="is a folder, not a file. Fix it."):
        require_file(tmp_path, "validation file", DataError, fix="Fix it.")
    assert require_file(tmp_path, "data file", DataError, fix="", folder="") == tmp_path


def test_impossible_paths_are_user_errors(tmp_path):
    long = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(DataError, match="too long for this system") as info:
        require_file(long, "data file", DataError, fix="Check [data] path.")
    assert len(str(info.value)) < 600  # the 300-character name is shortened
    f = tmp_path / "a.csv"
    f.write_text("a\n1\n")
    with pytest.raises(DataError, match=r"goes through a file as if it were a folder: .*a.csv "
                                        r"is a file"):
        require_file(f / "b.csv", "data file", DataError, fix="")
    with pytest.raises(ConfigError, match="too long for this system"):
        load_config(tmp_path / ("c" * 300 + ".toml"))


# -- archives and JSON ---------------------------------------------------------------------
def test_config_json_is_read_in_bounded_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_CONFIG_JSON", 4096)
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        _stream_member(z, "config.json", b'{"class_name": "x", "a": "', b"y", 5000, b'"}')
    with pytest.raises(ModelLoadError, match="config.json of 4.9 KiB"):
        archive.keras_archive_config(path)
    # the declared size is not trusted: a member that says 100 bytes but holds 5000 is cut
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("config.json")
        info.file_size = 100
        with pytest.raises((ModelLoadError, zipfile.BadZipFile)):
            archive._bounded_read(path, z, info)


def test_nesting_depth_is_measured_without_recursion():
    text = '{"a": "[[[[ not counted", "b": ' + "[" * 50_000 + "]" * 50_000 + "}"
    assert archive.nesting_depth(text) == 50_001
    assert archive.nesting_depth('{"a": [1, {"b": "}}}"}]}') == 3
    with pytest.raises(ModelLoadError, match="nested 50,001 levels deep; a Keras model's is "
                                             "under 100"):
        archive.parse_model_json(text, Path("m.keras"), "config.json")


def test_stored_code_and_foreign_names_are_found_in_a_config():
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
        {"class_name": "Dense", "config": {"name": "d1", "activation": {"value": [
            "4wEAAAAAAAAAAAAAAAIAAAADAAAA8wwAAAC", None, None]}}},
        {"class_name": "Lambda", "config": {"name": "lam", "function": {
            "class_name": "__lambda__", "config": {"code": "abc"}}}}]},
        "compile_config": {"loss": {"module": "subprocess", "class_name": "function",
                                    "config": "run"},
                           "metrics": [{"module": "builtins", "class_name": "function",
                                        "config": "my_metric"}]}}
    [code] = stored_code(config)
    assert code.where == "the activation of layer 'd1'" and not code.loadable
    assert foreign_names(config) == ("subprocess.run",)  # a custom metric is not foreign
    assert foreign_names({"module": "builtins", "class_name": "function",
                          "config": "eval"}) == ("builtins.eval",)


# -- config --------------------------------------------------------------------------------
def test_the_static_optimizer_names_are_the_ones_keras_accepts():
    import keras
    from keras.src.optimizers import ALL_OBJECTS_DICT

    accepted = set()
    for name in ALL_OBJECTS_DICT:
        try:
            ok = isinstance(keras.optimizers.get(name), keras.optimizers.Optimizer)
        except Exception:
            ok = False
        if ok:
            accepted.add(name.lower())
    assert accepted == set(KERAS_OPTIMIZERS)
    with pytest.raises(ValueError):
        keras.optimizers.get("adamm")


@pytest.mark.parametrize("text, phrase", [
    ('[train]\noptimizer = "adamm"\n', "Did you mean 'adam'?"),
    ('[train]\noptimizer = "RMSProp"\n', None),
    ('[train]\noptimizer = "sgd"\n', None),
    ("a = " + "[" * 10_000 + "]" * 10_000 + "\n", "too deeply"),
    ("a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n", "too deeply"),
])
def test_config_values_that_would_crash_later_are_config_errors(tmp_path, text, phrase):
    if phrase is None:
        parse_config(text, tmp_path / "nandoc.toml")
        return
    with pytest.raises(ConfigError, match=phrase):
        parse_config(text, tmp_path / "nandoc.toml")


def test_the_toml_encodings(tmp_path):
    p = tmp_path / "nandoc.toml"
    p.write_bytes(b"\xef\xbb\xbf[train]\nepochs = 3\n")
    assert load_config(p).train.epochs == 3
    for encoding, name in (("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("utf-16-le", "NUL")):
        p.write_bytes("[train]\nepochs = 3\n".encode(encoding))
        with pytest.raises(ConfigError, match=f"is not UTF-8 text .*{name}"):
            load_config(p)


# -- npz -----------------------------------------------------------------------------------
def test_npz_headers_decide_before_a_read(tmp_path):
    ok = tmp_path / "ok.npz"
    np.savez(ok, x=np.zeros((10, 3)), label=np.zeros(10))
    check_npz(ok, "[data] path")
    objects = tmp_path / "obj.npz"
    np.savez(objects, x=np.array([1, "a"], dtype=object))
    with pytest.raises(DataError, match="holds Python objects"):
        check_npz(objects, "[data] path")
    big = _npz_bomb(tmp_path / "big.npz", shape=(100_000, 1000))
    assert big.stat().st_size < 8 * 2**20  # a few MB on disk
    with pytest.raises(DataError, match=r"array 'x' has shape \(100000, 1000\) and dtype "
                                        r"float64: it would take 762.9 MiB"):
        check_npz(big, "[data] validation_path")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_a_named_pipe_among_the_images_is_refused_not_read(tmp_path):
    import threading

    from nandoc.loading.images import ImageFolder, read_images

    (tmp_path / "cats").mkdir()
    fifo = tmp_path / "cats" / "a.png"
    os.mkfifo(fifo)
    folder = ImageFolder(tmp_path, ("cats",), (fifo,), np.zeros(1, dtype=np.int64))
    caught: list[BaseException] = []

    def read() -> None:
        try:
            read_images(folder, np.array([0]), (4, 4), 3)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            caught.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # the read blocked on the pipe: release it, then fail
        with open(fifo, "wb"):
            pass
        worker.join(10)
        pytest.fail("read_images blocked on a named pipe")
    assert caught and isinstance(caught[0], DataError), caught
    assert "a.png is a named pipe (FIFO), not a regular file" in str(caught[0])


def test_an_h5_dataset_that_declares_far_more_than_it_stores_is_refused(tmp_path, models):
    import h5py
    import keras

    from nandoc.loading.model import inspect_model_file

    path = tmp_path / "m.h5"
    keras.saving.load_model(models["binary"]).save(path)
    assert inspect_model_file(path)["class_name"] == "Sequential"  # the healthy file reads
    with h5py.File(path, "a") as f:  # 1 GiB of float64 declared, never written: 0 stored
        f.create_dataset("model_weights/huge", shape=(2**27,), dtype="float64", chunks=True,
                         compression="gzip")
    with pytest.raises(ModelLoadError, match="dataset 'model_weights/huge' declares 1.0 GiB "
                                             "once read but stores only 0 bytes"):
        inspect_model_file(path)
