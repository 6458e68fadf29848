"""Golden files: the check report of every bundled sample, rendered as JSON and as text.

After an intended change to findings or rendering, rewrite them and review the diff:

    python -m pytest tests/test_golden.py --regen-golden

Never edit a golden file by hand. Both sides are normalised the same way before comparing: the
timings are dropped, the version and the repository's absolute path become placeholders,
floats are rounded, trailing blanks are stripped. Each sample is checked from the repository
root with relative paths, so the text wraps the same way on every machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SAMPLES
from tests.test_check_cases import _run

GOLDEN = Path(__file__).parent / "golden"
SAMPLE_NAMES = sorted(p.parent.name for p in SAMPLES.glob("*/nandoc.toml"))
FORMATS = {"json": "JSON", "txt": "TEXT"}  # file suffix -> nandoc.render.Format member


def _check_sample(name: str):
    from nandoc.config import load_config

    here = os.getcwd()
    os.chdir(REPO)  # paths in the report relative to the repository, as a user there types them
    try:
        report = _run(load_config(SAMPLES.relative_to(REPO) / name / "nandoc.toml"))
    finally:
        os.chdir(here)
    return replace(report, timings={})


@pytest.fixture(scope="session")
def sample_report():
    """sample name -> its check Report, each sample checked once per session."""
    done: dict[str, Any] = {}

    def get(name: str):
        if name not in done:
            done[name] = _check_sample(name)
        return done[name]

    return get


def _paths(text: str) -> str:
    for root in sorted({str(REPO), REPO.as_posix()}, key=len, reverse=True):
        text = text.replace(root, "<repo>")
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, str):
        return _paths(value)
    return value


def normalise_json(text: str) -> str:
    doc = json.loads(text)
    doc.pop("timings", None)
    if "nandoc" in doc:
        doc["nandoc"] = "<version>"
    return json.dumps(_scrub(doc), indent=2, ensure_ascii=False) + "\n"


def normalise_text(text: str) -> str:
    return "".join(line.rstrip() + "\n" for line in _paths(text).splitlines())


def rendered(report, suffix: str) -> str:
    from nandoc.render import Format, render

    text = render(report, Format[FORMATS[suffix]], color=False, width=100)
    return normalise_json(text) if suffix == "json" else normalise_text(text)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_golden(sample: str, suffix: str, sample_report, regen_golden):
    actual = rendered(sample_report(sample), suffix)
    path = GOLDEN / f"{sample}.check.{suffix}"
    if regen_golden:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path.name} is missing: run with --regen-golden"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{path.name} differs; if the change is intended, run with --regen-golden and review "
        f"the diff")


def test_every_sample_has_a_golden_file_per_format():
    assert SAMPLE_NAMES, "no sample_configs/*/nandoc.toml found"
    expected = {f"{s}.check.{suffix}" for s in SAMPLE_NAMES for suffix in FORMATS}
    present = {p.name for p in GOLDEN.glob("*.check.*")} if GOLDEN.is_dir() else set()
    assert present == expected, ("one golden file per sample and format, none stale: delete "
                                 "stale ones, write missing ones with --regen-golden")
