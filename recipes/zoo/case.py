"""What a zoo case is: a real, tiny run that exhibits one failure of the field reports.

A case is a training config (a shipped recipe config plus ``key=value`` overrides that reproduce the
failure), the probe that must fire on the finished run, and the fix-recipe that answers it. Nothing in
a case says "this run is broken" to the probes: they read the run's checkpoint, data and curves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.findings import Finding, Report, Severity


@dataclass(frozen=True)
class Case:
    name: str
    seed: str  # which field report: "000" (BART EHR), "002" (T5 diagnosis), "001"/"004" (code models)
    failure: str  # what goes wrong, in the report's words
    how: str  # how the case reproduces it for real
    probe: str  # the probe id that must fire (warn or fail)
    fix: str  # the fix-recipe id that answers it
    config: str  # shipped config name in recipes/configs (without .yaml)
    overrides: tuple[str, ...] = ()
    # extra overrides applied to the *fixed* run too (shared tiny-run settings live in the runner)
    evidence: Callable[[Path], list[Finding]] | None = None  # probe runner when the doctor has no run to read
    expect_crash: bool = False  # training itself fails (seed 002's collator crash)
    match: str = ""  # only findings whose title holds this text count (a probe that reports several issues)
    # writes data the case needs under the zoo's data root and returns the overrides naming it (a leaky copy)
    prepare: Callable[[Path], tuple[str, ...]] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.name:30} seed {self.seed}  probe {self.probe:34} fix {self.fix}"

    def firing(self, report: Report | list[Finding]) -> list[Finding]:
        """The probe's warn/fail findings about *this* failure: those naming the case's fix-recipe (or,
        with ``match``, whose title holds it), so another complaint of the same probe does not count."""
        hits = firing(report, self.probe)
        if self.match:
            return [f for f in hits if self.match in f.title]
        return [f for f in hits if self.fix in f.recipes]


def firing(report: Report | list[Finding], probe: str) -> list[Finding]:
    """Findings of ``probe`` at warn or above (what "the probe fires" means)."""
    findings = report.findings if isinstance(report, Report) else report
    return [f for f in findings if f.probe == probe and f.severity >= Severity.WARN]


def above_info(report: Report | list[Finding]) -> list[Finding]:
    findings = report.findings if isinstance(report, Report) else report
    return [f for f in findings if f.severity > Severity.INFO]
