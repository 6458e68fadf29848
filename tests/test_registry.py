"""Meta-tests over the registry and the catalogue: every check registered, documented, tested."""

from __future__ import annotations

import re
from pathlib import Path

from nandoc.checks import load_all
from nandoc.core.causes import CAUSES, get_cause
from nandoc.core.registry import KNOWN_NEEDS, all_checks

CONTRACT_IDS = [
    "data-nonfinite", "data-unscaled", "zero-variance-normalization", "label-out-of-range",
    "empty-validation", "softmax-single-unit", "activation-loss-mismatch", "unclipped-log",
    "division-by-zero", "sqrt-at-zero", "exp-overflow", "where-gradient-trap",
    "tensor-python-branch", "exploding-gradients", "learning-rate-too-high", "float16-overflow",
]
TESTS = Path(__file__).parent


def test_catalogue_covers_the_contract_and_every_entry_is_complete():
    assert set(CONTRACT_IDS) <= set(CAUSES)
    for cause in CAUSES.values():
        for field in ("summary", "what", "why", "confirm", "fix", "example"):
            assert getattr(cause, field).strip(), f"{cause.id}.{field} is empty"
        assert get_cause(cause.id) is cause


def test_every_check_is_registered_documented_and_emits_known_causes():
    assert load_all() == {}  # every check module imports
    checks = all_checks()
    assert checks
    for spec in checks:
        assert spec.title and spec.title != spec.id, f"{spec.id} has no docstring title"
        assert set(spec.needs) | set(spec.wants) <= KNOWN_NEEDS
        assert spec.causes and set(spec.causes) <= set(CAUSES), spec.id


def test_every_emitted_cause_has_a_test_that_names_it():
    load_all()
    text = "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(
        __file__).name)
    emitted = {c for spec in all_checks() for c in spec.causes}
    untested = [c for c in emitted if not re.search(rf"['\"]{re.escape(c)}['\"\]-]", text)]
    assert untested == []


# --- the case table of tests/test_check_cases.py -------------------------------------------------


def _cases_by_check() -> dict[str, dict[str, list]]:
    from tests.test_check_cases import CASES

    out: dict[str, dict[str, list]] = {}
    for case in CASES:
        out.setdefault(case.check, {"fires": [], "silent": []})[case.expect].append(case)
    return out


def test_every_check_has_a_fires_case_and_a_silent_case():
    assert load_all() == {}
    cases = _cases_by_check()
    ids = [spec.id for spec in all_checks()]
    missing = [f"{cid}-{kind}" for cid in ids for kind in ("fires", "silent")
               if not cases.get(cid, {}).get(kind)]
    assert missing == [], "add these rows to CASES in tests/test_check_cases.py"
    assert sorted(set(cases) - set(ids)) == [], "cases for checks that are not registered"


def test_every_declared_cause_is_expected_from_a_fires_case():
    """test_check_cases proves each expected cause is emitted, so a declared cause that no
    fires case expects is a cause the check may never emit."""
    load_all()
    cases = _cases_by_check()
    unproven = {spec.id: sorted(set(spec.causes) - {c for case in cases.get(spec.id, {}).get(
        "fires", []) for c in case.causes}) for spec in all_checks()}
    assert {cid: causes for cid, causes in unproven.items() if causes} == {}


def test_every_check_module_and_function_follow_from_its_id():
    """nandoc.checks.<family>.<stem>.<stem>, the stem being the id less its family prefix."""
    load_all()
    wrong = []
    for spec in all_checks():
        family = spec.module.split(".")[2] if spec.module.count(".") >= 3 else "?"
        stem = spec.id.removeprefix(family + "-").replace("-", "_")
        want = (f"nandoc.checks.{family}.{stem}", stem)
        got = (spec.module, spec.func.__name__)
        if got != want:
            wrong.append(f"{spec.id}: {'.'.join(got)} should be {'.'.join(want)}")
    assert wrong == []
