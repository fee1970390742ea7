"""The one patient shape every source (MIMIC-III, MIMIC-IV, MEDS, synthetic) is read into.

Codes are kept as ``(system, code)`` with the code undotted (``("icd9", "25000")``,
``("icd10", "E119")``), so how they are spelled in a dataset is decided once, by ``format_code``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ehrdebug.codes import icd9_add_dot

AGE_CAP = 90  # MIMIC hides ages over 89 (300 in MIMIC-III, 91 in MIMIC-IV): report them as 90
CODE_STYLES = ("seed", "dotted", "mimic")
UNKNOWN_ETHNICITY = "UNKNOWN/NOT SPECIFIED"

Code = tuple[str, str]


@dataclass
class Visit:
    visit_id: str
    admit: datetime
    age: int
    codes: list[Code] = field(default_factory=list)
    died: bool = False
    discharge: datetime | None = None


@dataclass
class PatientRecord:
    patient_id: int
    sex: str  # "M", "F" or "" when the source does not say
    ethnicity: str
    visits: list[Visit] = field(default_factory=list)


def cap_age(age: float) -> int:
    """Whole years, never negative, over-89 capped at 90 (a 300-year-old is a MIMIC-III quirk, not data)."""
    return max(0, min(AGE_CAP, int(age)))


def age_between(dob: datetime, when: datetime) -> int:
    years = when.year - dob.year - ((when.month, when.day) < (dob.month, dob.day))
    return cap_age(years)


def normalize_sex(value: object) -> str:
    text = str(value or "").strip().upper()
    if text in ("M", "MALE"):
        return "M"
    if text in ("F", "FEMALE"):
        return "F"
    return ""


def normalize_ethnicity(value: object) -> str:
    text = " ".join(str(value or "").upper().split())
    return text or UNKNOWN_ETHNICITY


def normalize_code(system: str, code: str) -> Code | None:
    """``("icd9", "250.00")`` → ``("icd9", "25000")``; blanks are None."""
    raw = str(code or "").strip().replace(".", "").upper()
    return (system, raw) if raw else None


def format_code(code: Code, style: str = "seed") -> str:
    """How a code is written in a dataset.

    ``seed`` (seed 000's spelling): numeric ICD-9 dotted (``250.00``, ``486``), ICD-9 V/E codes as MIMIC
    stores them (``V3001``); ``dotted``: every ICD-9 dotted (``V30.01``); ``mimic``: as stored (``25000``).
    ICD-10 is dotted after three characters in ``seed``/``dotted`` (``E11.9``) and undotted in ``mimic``.
    """
    system, raw = code
    if style == "mimic":
        return raw
    if system == "icd10":
        return raw if len(raw) <= 3 else f"{raw[:3]}.{raw[3:]}"
    if system != "icd9":
        return raw
    if style == "seed" and raw[:1] in ("V", "E"):
        return raw
    return icd9_add_dot(raw)


def parse_time(value: object) -> datetime | None:
    """MIMIC timestamps (``2196-04-09 12:26:00``), dates, ISO strings or datetimes; blank is None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    text = str(value).strip()
    if not text or text.lower() in ("nan", "nat", "none", "null"):
        return None
    try:
        return datetime.fromisoformat(text.replace("T", " ").removesuffix("Z")).replace(tzinfo=None)
    except ValueError:
        return None
