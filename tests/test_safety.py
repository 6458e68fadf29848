"""Safe by default, and nothing written.

- A model with a Lambda layer is refused unless --unsafe is given, and the Lambda's code never
  runs: a Lambda that would create a marker file leaves no marker.
- custom_objects files are imported (run) only because the user named them, and --help says so.
- Every command, run on a copy of a sample, leaves the model, data, config and custom-objects
  files byte-identical, creates nothing in their folder (no __pycache__ either) except the
  --output file asked for, and leaves nothing behind in its temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, healthy_rows, write_csv

ENV = {**os.environ, "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def nandoc(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nandoc", *map(str, args)], cwd=cwd,
                          env=env or ENV, capture_output=True, text=True, timeout=300)


def _marker_lambda(marker: Path):
    """A Lambda whose function creates `marker` when it runs. The path is a constant of the
    function's own code, so it travels inside the saved file."""
    return eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")


@pytest.fixture(scope="module")
def marker_model(tmp_path_factory) -> tuple[Path, Path]:
    import keras

    d = tmp_path_factory.mktemp("lambda")
    marker = d / "lambda_ran"
    m = keras.Sequential([keras.Input((3,)),
                          keras.layers.Lambda(_marker_lambda(marker), name="writes_a_file"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    m.save(d / "lambda.keras")
    marker.unlink(missing_ok=True)  # building the model above ran the lambda once
    return d / "lambda.keras", marker


def test_lambda_is_refused_and_never_executed_without_unsafe(tmp_path, marker_model):
    model, marker = marker_model
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows(20))
    res = nandoc("check", model, data, "--target", "label", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    err = res.stderr
    assert err.startswith("nandoc: error: ") and len(err.strip().splitlines()) == 1
    assert "Lambda layer(s) 'writes_a_file'" in err and "--unsafe" in err
    assert "execute" in err and "can do anything on this machine" in err
    assert not marker.exists()


def test_keras_safe_mode_still_guards_behind_nandocs_own_refusal(marker_model):
    """Defence in depth: even handed straight to Keras, safe mode refuses the file unrun."""
    import keras

    model, marker = marker_model
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(model, safe_mode=True)
    assert not marker.exists()


def test_unsafe_runs_the_lambda_so_the_marker_test_means_something(marker_model):
    from nandoc.loading.model import load_model

    model, marker = marker_model
    try:
        assert load_model(model, {}, unsafe=True) is not None
        assert marker.exists()  # with --unsafe the stored code does run
    finally:
        marker.unlink(missing_ok=True)


def test_help_says_custom_objects_files_are_run_because_they_were_named(tmp_path):
    res = nandoc("check", "--help", cwd=tmp_path)
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "--custom-objects" in text and "imports (runs) it because you named it" in text
    assert "--unsafe" in text and "safe mode off" in text


# --- nothing written ------------------------------------------------------------------------

def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()} | {
        str(p.relative_to(folder)) + "/": "" for p in folder.rglob("*") if p.is_dir()}


def test_every_command_leaves_the_users_files_untouched(tmp_path):
    """check (text on stdout, JSON to --output), replay (--output, --plot), explain and init on
    a copy of a sample with a custom-objects file: byte-identical files afterwards, no new file
    but the ones asked for, and an empty private temporary folder."""
    sample = tmp_path / "sample"
    shutil.copytree(SAMPLES / "where_trap_loss", sample)
    before = _tree(sample)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**ENV, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}

    res = nandoc("check", cwd=sample, env=env)  # ./nandoc.toml, text report on stdout
    assert res.returncode in (0, 1), res.stderr
    assert _tree(sample) == before

    res = nandoc("check", "--config", sample / "nandoc.toml", "--format", "json",
                 "--output", tmp_path / "report.json", cwd=tmp_path, env=env)
    assert res.returncode in (0, 1), res.stderr
    assert (tmp_path / "report.json").stat().st_size > 0 and res.stdout == ""
    assert _tree(sample) == before

    res = nandoc("replay", "--epochs", "1", "--steps", "3", "--no-verify-fixes", "--format",
                 "json", "--output", tmp_path / "replay.json", "--plot", tmp_path / "plot.png",
                 cwd=sample, env=env)
    assert res.returncode in (0, 1), res.stderr
    assert (tmp_path / "replay.json").stat().st_size > 0
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert _tree(sample) == before

    for args in (["explain"], ["explain", "where-gradient-trap"]):
        assert nandoc(*args, cwd=sample, env=env).returncode == 0
    res = nandoc("init", cwd=sample, env=env)  # a nandoc.toml exists: refused, unchanged
    assert res.returncode == 2 and "--force" in res.stderr
    assert _tree(sample) == before

    fresh = tmp_path / "fresh"  # init in a folder without a config writes that, only that
    shutil.copytree(sample, fresh, ignore=shutil.ignore_patterns("nandoc.toml"))
    fresh_before = _tree(fresh)
    assert nandoc("init", cwd=fresh, env=env).returncode == 0
    after = _tree(fresh)
    assert set(after) - set(fresh_before) == {"nandoc.toml"}
    assert {k: after[k] for k in fresh_before} == fresh_before
    assert list(tmp.iterdir()) == []  # temporary files were removed


def test_a_failed_run_writes_no_output_file(tmp_path, models):
    """An exit-2 run leaves no half-written report where --output points."""
    data = write_csv(tmp_path / "data.csv", ["a", "b", "c", "label"], healthy_rows(20))
    out = tmp_path / "report.json"
    res = nandoc("check", models["binary"], data, "--target", "nope", "--format", "json",
                 "--output", out, cwd=tmp_path)
    assert res.returncode == 2 and not out.exists()
