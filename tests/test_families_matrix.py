"""Every model family nandoc supports, healthy and with a planted fault, through check and replay.

The families are the bundled examples' builders (sample_configs/families.py): MLP, Conv1D
windows, Conv2D images from an npz, an image folder, Embedding+LSTM text, several inputs,
several outputs, an attention block, a subclassed model and a GRU. A healthy one must exit 0
with every applicable check run and none failed; the same one with its fault must exit 1 with
the planted cause ranked within its bound (first for data faults).
"""

from __future__ import annotations

import pytest

from nandoc.core.finding import FailOn
from sample_configs.families import FAMILIES, build

DRIVERS = ("check", "replay")


def _run(driver: str, toml):
    from nandoc.config import load_config

    cfg = load_config(toml)
    if driver == "check":
        from nandoc.drivers.check import check

        return check(cfg)
    from nandoc.drivers.replay import replay

    return replay(cfg)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """family -> {fault: (toml path, Planted)}, built once."""
    root = tmp_path_factory.mktemp("families")
    cache: dict[tuple[str, bool], tuple] = {}

    def get(family: str, fault: bool):
        key = (family, fault)
        if key not in cache:
            folder = root / f"{family}-{'faulty' if fault else 'healthy'}"
            cache[key] = (folder / "nandoc.toml", build(family, folder, fault))
        return cache[key]

    return get


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_healthy_family_is_clean_with_every_check_run(built, family, driver):
    toml, _ = built(family, False)
    report = _run(driver, toml)
    failed = [(c.check, c.detail) for c in report.failed_checks()]
    errors = [(f.cause, f.title) for f in report.findings if f.severity.value == "error"]
    assert not failed, failed
    assert not errors, errors
    assert report.first_nonfinite is None
    assert report.exit_code(FailOn.ERROR) == 0, report.status


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_planted_fault_is_named(built, family, driver):
    toml, planted = built(family, True)
    report = _run(driver, toml)
    causes = [f.cause for f in report.findings]
    assert report.exit_code(FailOn.ERROR) == 1, (report.status, causes)
    assert planted.cause in causes[:planted.rank], (planted, causes)
