"""The findings model: what every probe returns and every shell renders.

A finding is evidence, not a verdict pulled from a label: it carries the figures and concrete
examples that triggered it, the rule that was applied, and the ids of the fix-recipes that answer it.
Plain dataclasses so the core, the probes, the CLI and the TUI share them without importing each other.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that ``max()`` gives the worst; ``FAIL`` is the CI gate default."""

    OK = 0
    INFO = 1
    WARN = 2
    FAIL = 3

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError as exc:
            valid = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {valid})") from exc

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass
class Finding:
    """One probe result.

    ``evidence`` holds figures (numbers, small tables as lists of dicts); ``examples`` holds a few
    concrete cases (the actual token pieces, the offending rows). ``rule`` states in words the
    threshold that was applied, so a user can see why it fired.
    """

    probe: str
    severity: Severity
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    examples: list[Any] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)
    rule: str = ""
    subject: str = ""

    def __post_init__(self) -> None:
        self.severity = Severity.parse(self.severity)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.label
        return _jsonable(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        known = {k: data[k] for k in ("probe", "severity", "title", "evidence", "examples", "recipes", "rule", "subject") if k in data}
        return cls(**known)


@dataclass
class Report:
    """An ordered collection of findings about one subject (a tokenizer, a dataset, a run)."""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.OK)

    def ranked(self) -> list[Finding]:
        """Worst first; stable within a severity so probe order is kept."""
        return sorted(self.findings, key=lambda f: -int(f.severity))

    def at_least(self, severity: Severity | str) -> list[Finding]:
        floor = Severity.parse(severity)
        return [f for f in self.findings if f.severity >= floor]

    def exit_code(self, fail_on: Severity | str = Severity.FAIL) -> int:
        """0 when nothing reaches ``fail_on``, 1 otherwise (2 is reserved for usage errors)."""
        return 1 if self.at_least(fail_on) else 0

    def recipe_ids(self, floor: Severity | str = Severity.WARN) -> list[str]:
        seen: dict[str, None] = {}
        for finding in self.ranked():
            if finding.severity >= Severity.parse(floor):
                for rid in finding.recipes:
                    seen.setdefault(rid, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "worst": self.worst.label,
            "meta": _jsonable(self.meta),
            "findings": [f.to_dict() for f in self.ranked()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(
            subject=data.get("subject", ""),
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            meta=data.get("meta", {}),
        )


def _jsonable(value: Any) -> Any:
    """Make numpy/torch scalars, tuples and sets JSON-safe without importing numpy or torch."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.name.lower() if isinstance(value, Severity) else value.value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (ValueError, TypeError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)
