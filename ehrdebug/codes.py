"""Medical code systems: patterns to find codes in text, and ICD-9 dot conventions.

Built-in systems cover what the seeds meet (ICD-9-CM with and without dots, ICD-10-CM, SNOMED-CT ids,
ATC, LOINC, NDC); users add custom regexes through ``[tool.ehrdebug] code_systems``.
Patterns are anchored on token boundaries (whitespace or the text's edges) so ``250.00`` inside a
sentence is found but a year inside a date is not taken for a code by accident more than necessary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CodeSystem:
    name: str
    pattern: str
    description: str = ""

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _CACHE:
        _CACHE[pattern] = re.compile(rf"(?<![\w.])(?:{pattern})(?![\w.])")
    return _CACHE[pattern]


BUILTIN: dict[str, CodeSystem] = {
    s.name: s
    for s in (
        CodeSystem("icd9", r"(?:V\d{2}\.\d{1,2}|V\d{2}|E\d{3}\.\d|E\d{3}|\d{3}\.\d{1,2})", "ICD-9-CM with dots (250.00, V30.01)"),
        CodeSystem("icd9_nodot", r"(?:V\d{3,4}|E\d{4}|\d{4,5}|V\d{2}|\d{3})", "ICD-9-CM as MIMIC stores it (25000, V3001, 486)"),
        CodeSystem("icd10", r"[A-TV-Z]\d{2}(?:\.[0-9A-Z]{1,4})?", "ICD-10-CM (E11.9, I21.4)"),
        CodeSystem("snomed", r"\d{6,18}", "SNOMED-CT concept ids (22298006)"),
        CodeSystem("atc", r"[A-V]\d{2}[A-Z]{2}\d{2}", "ATC drug classes (C10AA05)"),
        CodeSystem("loinc", r"\d{1,5}-\d", "LOINC observations (2345-7)"),
        CodeSystem("ndc", r"\d{4,5}-\d{3,4}-\d{1,2}", "NDC drug products (0002-1433-80)"),
    )
}


def resolve_systems(names: Iterable[str] | None = None, custom: dict[str, str] | None = None) -> list[CodeSystem]:
    """Return the named built-in systems plus custom ``{name: regex}``; unknown names are a ValueError."""
    systems: list[CodeSystem] = []
    for name in names or ():
        if name not in BUILTIN and name not in (custom or {}):
            raise ValueError(f"unknown code system {name!r} (built-in: {', '.join(BUILTIN)})")
        if name in BUILTIN:
            systems.append(BUILTIN[name])
    for name, pattern in (custom or {}).items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"code system {name!r}: invalid regex: {exc}") from exc
        systems.append(CodeSystem(name, pattern, "custom"))
    return systems


def find_codes(text: str, system: CodeSystem) -> list[str]:
    return system.regex.findall(text)


def detect_systems(texts: Iterable[str], candidates: Iterable[CodeSystem] | None = None, min_share: float = 0.02) -> list[CodeSystem]:
    """Systems whose pattern matches at least ``min_share`` of whitespace tokens in the sample.

    Overlapping systems are resolved in favour of the more specific one: ICD-9 (dotted or as MIMIC
    stores it) wins over SNOMED digits. Seed 000's data mixes both spellings (``V3001`` and ``250.00``).
    """
    pool = list(candidates or BUILTIN.values())
    hits = {s.name: 0 for s in pool}
    words = 0
    for text in texts:
        words += len(text.split())
        for s in pool:
            hits[s.name] += len(s.regex.findall(text))
    if not words:
        return []
    found = [s for s in pool if hits[s.name] / words >= min_share]
    names = {s.name for s in found}
    if ("icd9" in names or "icd9_nodot" in names) and "snomed" in names:
        found = [s for s in found if s.name != "snomed"]
    return found


def icd9_add_dot(code: str, kind: str = "dx") -> str:
    """MIMIC stores ICD-9 without dots; put the dot back (``25000`` → ``250.00``, ``V3001`` → ``V30.01``).

    Diagnoses: the dot follows 3 characters (4 for E codes); procedures: it follows 2.
    """
    code = code.strip()
    if "." in code:
        return code
    if kind == "proc":
        return code if len(code) <= 2 else f"{code[:2]}.{code[2:]}"
    head = 4 if code.startswith("E") else 3
    return code if len(code) <= head else f"{code[:head]}.{code[head:]}"


def icd9_strip_dot(code: str) -> str:
    return code.replace(".", "").strip()


_MARKER = re.compile(r"^<\\?[A-Za-z_/\\]+>$")


def code_counts(texts: Iterable[str], structural: Iterable[str] = ()) -> Counter[str]:
    """How often each code occurs in training texts, counted one way for training and the fixes alike: the words
    inside EHR visits (``<v> … <\\v>``) of a text that has visits, else every word of it that is no structural
    token or ``<marker>`` (a T5 label, a plain code list)."""
    from ehrdebug.grammar import VISIT_OPEN, parse_sequence

    skip = set(structural)
    counts: Counter[str] = Counter()
    for text in texts:
        if VISIT_OPEN in text:
            counts.update(parse_sequence(text, require_demographics=False).codes)
        else:
            counts.update(w for w in text.split() if w not in skip and not _MARKER.match(w))
    return counts


def top_codes(texts: Iterable[str], n: int, structural: Iterable[str] = ()) -> list[str]:
    """The ``n`` most frequent codes of ``code_counts`` (ties broken alphabetically, so every caller agrees)."""
    counts = code_counts(texts, structural)
    return [code for code, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]
