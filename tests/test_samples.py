"""The bundled samples: nandoc ranks each report's real root cause first, with its location."""

from __future__ import annotations

import json

import pytest

from nandoc.config import load_config
from nandoc.drivers.check import check
from tests.conftest import SAMPLES
from tests.test_cli import nandoc

EXPECTED = {
    "conv1d_timeseries": [
        ("data-unscaled", {"kind": "data", "column": "timestamp_ns_sq"}),
        ("softmax-single-unit", {"kind": "layer", "layer": "output"}),
        ("empty-validation", {"kind": "config"}),
    ],
    "sparse_events_loss": [
        ("tensor-python-branch", {"kind": "loss", "line": 11}),
        ("unclipped-log", {"kind": "loss", "line": 12}),
        ("unclipped-log", {"kind": "loss", "line": 14}),
    ],
    "where_trap_loss": [("where-gradient-trap", {"kind": "loss", "line": 15})],
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_ranks_its_root_causes(sample):
    report = check(load_config(SAMPLES / sample / "nandoc.toml"))
    got = [(f.cause, f.location) for f in report.findings if f.severity.value == "error"]
    assert [c for c, _ in got] == [c for c, _ in EXPECTED[sample]]
    for (_, loc), (_, want) in zip(got, EXPECTED[sample]):
        assert {k: getattr(loc, k) for k in want} == want
    assert report.failed_checks() == []
    assert all(f.fix for f in report.findings)


def test_where_trap_fix_is_the_double_where_of_the_users_expression():
    report = check(load_config(SAMPLES / "where_trap_loss" / "nandoc.toml"))
    fix = report.findings[0].fix
    assert "x_safe" in fix and "ops.where" in fix


def test_healthy_sample_is_clean():
    report = check(load_config(SAMPLES / "healthy" / "nandoc.toml"))
    assert report.status == "clean" and report.failed_checks() == []


def test_quick_start_sample_through_the_cli():
    res = nandoc("check", "--config", SAMPLES / "conv1d_timeseries" / "nandoc.toml",
                 "--format", "json")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    assert [f["cause"] for f in doc["findings"]][:2] == ["data-unscaled", "softmax-single-unit"]
    res = nandoc("check", "--config", SAMPLES / "healthy" / "nandoc.toml")
    assert res.returncode == 0 and res.stdout.startswith("✔ No NaN risk found.")
