"""The static suspects: every finding the source read makes, measured once per run.

The three source detectors (python branches, unsafe math, where traps) each report their share
of these; the loss probe reads them to compare with what it measures.
"""

from __future__ import annotations

from nandoc.analysis.source.analysis import analyse
from nandoc.analysis.source.branches import branch_findings
from nandoc.analysis.source.traps import trap_findings
from nandoc.analysis.source.unsafe import unsafe_findings
from nandoc.core.finding import Finding
from nandoc.loading.custom_objects import SourceFile

READS = (branch_findings, unsafe_findings, trap_findings)


def static_suspects(sources: list[SourceFile]) -> tuple[Finding, ...]:
    """The findings of reading `sources`: python branches of every file, then unsafe-math
    suspects, then where traps, each in file order. A file that does not parse gives none."""
    analyses = [a for a in map(analyse, sources) if a is not None]
    return tuple(f for read in READS for a in analyses for f in read(a))
