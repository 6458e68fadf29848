"""Run registered checks over loaded inputs: a crash in one check never stops the others."""

from __future__ import annotations

from collections.abc import Iterable

from nandoc.core.evidence import first_sentence
from nandoc.core.finding import Finding
from nandoc.core.registry import CheckSpec
from nandoc.core.report import CheckResult, Outcome
from nandoc.engine.inputs import Inputs


def run_checks(inputs: Inputs, specs: Iterable[CheckSpec]) -> tuple[list[Finding],
                                                                      list[CheckResult]]:
    findings: list[Finding] = []
    results: list[CheckResult] = []
    for spec in specs:
        missing = [n for n in spec.needs if not inputs.has(n)]
        if missing:
            results.append(CheckResult(spec.id, Outcome.NOT_APPLICABLE,
                                       message=inputs.reason(missing[0])))
            continue
        try:
            kwargs = inputs.kwargs_for(spec.needs)
            kwargs.update({w: inputs.get(w) if inputs.has(w) else None
                           for w in spec.wants})
            found = [f.with_(check=spec.id) for f in spec.func(**kwargs)]
        except Exception as exc:  # a detector bug must not hide the other findings
            # a TensorFlow error's cause, not the node and the Python stack it was defined at
            results.append(CheckResult(spec.id, Outcome.FAILED,
                                       message=f"{type(exc).__name__}: "
                                               f"{first_sentence(str(exc), limit=400)}"))
            continue
        findings.extend(found)
        results.append(CheckResult(spec.id, Outcome.RAN, findings=len(found)))
    return findings, results

