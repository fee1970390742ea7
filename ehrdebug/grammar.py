"""The EHR sequence grammar of seed 000 and how to score generated sequences against it.

A valid sequence is ``{age} {ethnicity} {sex} <demo> (<v> CODE+ <\\v>)+ <END>`` where the ethnicity may
contain spaces and slashes (``UNKNOWN/NOT SPECIFIED``). Scoring is used by the generation probes,
the training recipes' evaluation and ``ehrdebug demo``, so all three agree on what "valid" means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEMO = "<demo>"
VISIT_OPEN = "<v>"
VISIT_CLOSE = "<\\v>"
END = "<END>"
STRUCTURAL_TOKENS = (DEMO, VISIT_OPEN, VISIT_CLOSE, END)

_DEMOGRAPHICS = re.compile(r"^\s*(\d{1,3})\s+(.+?)\s+([MF])\s*$")


@dataclass
class ParsedSequence:
    text: str
    valid: bool
    reason: str = ""
    age: int | None = None
    ethnicity: str = ""
    sex: str = ""
    visits: list[list[str]] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [c for visit in self.visits for c in visit]


def split_prompt(text: str) -> tuple[str, str]:
    """Split a full line at ``<demo>``: (``'56 ASIAN M <demo>'``, ``'<v> … <END>'``)."""
    head, sep, tail = text.partition(DEMO)
    if not sep:
        return text.strip(), ""
    return f"{head.strip()} {DEMO}", tail.strip()


def parse_sequence(text: str, require_demographics: bool = True) -> ParsedSequence:
    """Parse one generated or training sequence; ``valid`` is False with the first violated rule."""
    seq = ParsedSequence(text=text, valid=False)
    head, sep, body = text.partition(DEMO)
    if require_demographics:
        if not sep:
            seq.reason = "no <demo> token"
            return seq
        match = _DEMOGRAPHICS.match(head)
        if not match:
            seq.reason = "demographics are not '{age} {ethnicity} {sex}'"
            return seq
        seq.age, seq.ethnicity, seq.sex = int(match.group(1)), match.group(2), match.group(3)
    else:
        body = body if sep else text
    words = body.split()
    i = 0
    while i < len(words) and words[i] == VISIT_OPEN:
        j = i + 1
        visit: list[str] = []
        while j < len(words) and words[j] not in STRUCTURAL_TOKENS:
            visit.append(words[j])
            j += 1
        if j >= len(words) or words[j] != VISIT_CLOSE:
            seq.visits.append(visit)
            seq.reason = "a visit is not closed by <\\v>"
            return seq
        if not visit:
            seq.reason = "an empty visit"
            return seq
        seq.visits.append(visit)
        i = j + 1
    if not seq.visits:
        seq.reason = "no <v> … <\\v> visit after <demo>"
        return seq
    if i >= len(words) or words[i] != END:
        seq.reason = "does not end with <END>" if i >= len(words) else f"unexpected {words[i]!r} after a visit"
        return seq
    if i != len(words) - 1:
        seq.reason = "text after <END>"
        return seq
    seq.valid = True
    return seq


@dataclass
class GenerationScore:
    n: int
    structurally_valid: float
    valid_code_rate: float
    codes_generated: int
    invalid_examples: list[tuple[str, str]]
    unknown_codes: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "structurally_valid": round(self.structurally_valid, 4),
            "valid_code_rate": round(self.valid_code_rate, 4),
            "codes_generated": self.codes_generated,
        }


def score_generations(texts: Iterable[str], vocabulary: set[str] | None = None, require_demographics: bool = True) -> GenerationScore:
    """Share structurally valid, and share of generated codes that are in ``vocabulary`` (the data's codes).

    Codes are counted in every sequence (valid or not) between ``<v>`` and ``<\\v>``/``<END>``, so a
    model that writes fragments like ``AS IAN`` inside visits is penalised on both figures.
    """
    texts = list(texts)
    valid = 0
    total_codes = 0
    good_codes = 0
    bad: list[tuple[str, str]] = []
    unknown: dict[str, None] = {}
    for text in texts:
        parsed = parse_sequence(text, require_demographics=require_demographics)
        if parsed.valid:
            valid += 1
        elif len(bad) < 5:
            bad.append((text, parsed.reason))
        for code in parsed.codes:
            total_codes += 1
            if vocabulary is None or code in vocabulary:
                good_codes += 1
            elif len(unknown) < 10:
                unknown.setdefault(code, None)
    n = len(texts)
    return GenerationScore(
        n=n,
        structurally_valid=valid / n if n else 0.0,
        valid_code_rate=good_codes / total_codes if total_codes else 0.0,
        codes_generated=total_codes,
        invalid_examples=bad,
        unknown_codes=list(unknown),
    )
