"""The NaN zoo (tests/zoo/cases.py, and the held-out set tests/zoo/holdout.py, written without
reading the engine): on every pathological case `check` and `replay` exit 1 and rank the cause
that really produces the NaN first; on every healthy control they exit 0 with no error finding.
`python bench/accuracy.py` and `python bench/holdout.py` print the same as tables."""

from __future__ import annotations

import pytest

from nandoc.config import load_config
from nandoc.core.finding import FailOn
from nandoc.drivers.check import check
from nandoc.drivers.replay import replay
from tests.zoo import holdout
from tests.zoo.cases import BROKEN
from tests.zoo.cases import CASES as TUNED

CASES = [*TUNED, *holdout.CASES]

COMMANDS = ("check", "replay")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """Every case built once: name -> its nandoc.toml."""
    root = tmp_path_factory.mktemp("zoo")
    return {c.name: c.build(root / c.name) for c in CASES}


def _run(command: str, toml):
    cfg = load_config(toml)
    return check(cfg, steps=50) if command == "check" else replay(cfg)


@pytest.mark.parametrize(
    ("case", "command"),
    [pytest.param(c, cmd, id=f"{c.name}-{cmd}") for c in CASES for cmd in COMMANDS],
)
def test_zoo(zoo, case, command):
    report = _run(command, zoo[case.name])
    causes = [(f.cause, f.severity.value) for f in report.findings]
    code = report.exit_code(FailOn.ERROR)
    if case.kind == BROKEN:
        want = case.expected(command)
        assert code == 1, f"{case.name}: exit {code}, findings {causes}; plain fit: {case.why}"
        assert report.findings, f"{case.name}: no finding; plain fit: {case.why}"
        assert report.findings[0].cause in want, (
            f"{case.name} ({command}): rank 1 is {report.findings[0].cause}, want one of "
            f"{want}; all findings {causes}; plain fit: {case.why}")
    else:
        errors = [c for c, s in causes if s == "error"]
        assert code == 0 and not errors, (
            f"{case.name} ({command}): exit {code}, errors {errors}; plain fit: {case.why}")


def test_zoo_is_big_enough():
    broken = [c for c in TUNED if c.kind == BROKEN]
    healthy = [c for c in TUNED if c.kind != BROKEN]
    assert len(broken) >= 22 and len(healthy) >= 9
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(c.expect for c in broken) and not any(c.expect for c in healthy)
