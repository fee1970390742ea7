"""MEDS diagnoses as patients and stays, for the ICD-only tasks (seq2seq, coding).

Reads a MEDS root (``data/`` only), its ``data/`` folder, a folder of shards or one file; the
``codes`` task and MEDS label tasks read every code instead (``meds_codes``).

Visits come from ``HOSPITAL_ADMISSION``/``HOSPITAL_DISCHARGE`` events when present (diagnoses are
assigned to the stay whose span holds them), else from the calendar date of the diagnosis events.
Codes read: ``ICD9CM/250.00``, ``ICD10CM/E11.9`` and the MIMIC-IV ETL's ``DIAGNOSIS//ICD//9//25000``;
``MEDS_BIRTH`` gives ages (capped at 90), ``MEDS_DEATH`` inside a stay marks an in-hospital death,
``GENDER//M`` and ``RACE//WHITE`` (or ``ETHNICITY//``) the demographics.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta

from ehrdebug.data.meds_io import find_layout, read_events
from ehrdebug.data.records import (
    Code,
    PatientRecord,
    Visit,
    age_between,
    normalize_code,
    normalize_ethnicity,
    normalize_sex,
)

_DX = (
    (re.compile(r"^ICD9(?:CM)?/(.+)$", re.I), "icd9"),
    (re.compile(r"^ICD10(?:CM)?/(.+)$", re.I), "icd10"),
)
_DX_ETL = re.compile(r"^(?:DIAGNOSIS//)?ICD//(9|10)//(.+)$", re.I)
_SEX = re.compile(r"^(?:GENDER|SEX)//?(.+)$", re.I)
_RACE = re.compile(r"^(?:RACE|ETHNICITY)//?(.+)$", re.I)
_ADMIT = re.compile(r"^(?:HOSPITAL_)?ADMISSION\b", re.I)
_DISCH = re.compile(r"^(?:HOSPITAL_)?DISCHARGE\b", re.I)
_SLACK = timedelta(days=1)


def _read(path: str) -> list[tuple[int, datetime | None, str]]:
    """Events of a MEDS root, its ``data/`` folder, a shard folder or one file (metadata is never data)."""
    events, _ = read_events(find_layout(path).data_files)
    return [(sid, t, code) for sid, t, code, _ in events]


def diagnosis_code(code: str) -> Code | None:
    """``ICD9CM/250.00`` → ``("icd9", "25000")``; None for anything that is not an ICD diagnosis."""
    for pattern, system in _DX:
        m = pattern.match(code)
        if m:
            return normalize_code(system, m.group(1))
    m = _DX_ETL.match(code)
    if m:
        return normalize_code("icd9" if m.group(1) == "9" else "icd10", m.group(2))
    return None


def _subject(sid: int, events: list[tuple[datetime | None, str]], stats: dict[str, int]) -> PatientRecord | None:
    sex, race, birth, death = "", "", None, None
    stays: list[list[datetime | None]] = []
    dx: list[tuple[datetime, Code]] = []
    for t, code in events:
        if code == "MEDS_BIRTH":
            birth = t
        elif code == "MEDS_DEATH":
            death = t
        elif _SEX.match(code):
            sex = normalize_sex(_SEX.match(code).group(1))  # type: ignore[union-attr]
        elif _RACE.match(code):
            race = _RACE.match(code).group(1)  # type: ignore[union-attr]
        elif t is not None and _ADMIT.match(code):
            stays.append([t, None])
        elif t is not None and _DISCH.match(code) and stays and stays[-1][1] is None:
            stays[-1][1] = t
        else:
            parsed = diagnosis_code(code)
            if parsed is not None and t is not None:
                dx.append((t, parsed))
    if birth is None:
        stats["subjects_without_birth"] += 1
        return None
    visits: dict[str, Visit] = {}
    for t, code in dx:
        key, start = _visit_of(t, stays)
        visit = visits.setdefault(key, Visit(key, start, age_between(birth, start)))
        if code not in visit.codes:
            visit.codes.append(code)
    if not visits:
        stats["subjects_without_diagnoses"] += 1
        return None
    ordered = sorted(visits.values(), key=lambda v: v.admit)
    for visit in ordered:
        stay = next((s for s in stays if s[0] == visit.admit), None)
        visit.discharge = stay[1] if stay else None
        end = (visit.discharge or visit.admit) + _SLACK
        visit.died = death is not None and visit.admit <= death <= end
    return PatientRecord(sid, sex, normalize_ethnicity(race), ordered)


def _visit_of(t: datetime, stays: list[list[datetime | None]]) -> tuple[str, datetime]:
    for start, end in reversed(stays):
        if start is not None and start <= t and (end is None or t <= end + _SLACK):
            return start.isoformat(), start
    day = datetime(t.year, t.month, t.day)
    return day.isoformat(), day


def load_meds(path: str) -> tuple[list[PatientRecord], dict[str, int]]:
    stats: dict[str, int] = defaultdict(int)
    by_subject: dict[int, list[tuple[datetime | None, str]]] = defaultdict(list)
    for sid, t, code in _read(path):
        by_subject[sid].append((t, code))
    patients = []
    for sid in sorted(by_subject):
        events = sorted(by_subject[sid], key=lambda e: (e[0] is not None, e[0] or datetime.min))
        record = _subject(sid, events, stats)
        if record is not None:
            patients.append(record)
    return patients, dict(stats)
