"""Code-sequence records from MEDS events: every code (labs, drugs, procedures, diagnoses), with values.

Visits: an admission event (``ADMISSION...`` or ``HOSPITAL_ADMISSION...``) opens a stay that holds
every event up to and including the time of its discharge event; events outside any stay are grouped
by calendar day. A visit is assigned from earlier events only, so a later event never changes where
an earlier one went. ``MEDS_BIRTH`` gives ages (whole years, capped at 90; 0 when a subject has no
birth event, counted in ``subjects_without_birth``); ``MEDS_DEATH`` is never an input code.
Static rows (null time) come first, in the first visit, at day 0.

Two shapes: the ``codes`` task (history = every visit but the last; ``mortality`` = a death inside the
last visit; ``next_visit_codes`` = the last visit's codes) and MEDS label tasks (one record per label
row; input = events at or before its ``prediction_time``; ``label`` = its ``boolean_value``).
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from ehrdebug.data.meds_io import Event
from ehrdebug.data.records import age_between

_ADMIT = re.compile(r"^(?:HOSPITAL_)?ADMISSION\b", re.I)
_DISCH = re.compile(r"^(?:HOSPITAL_)?DISCHARGE\b", re.I)
_SLACK = timedelta(days=1)


def _is(code: str, name: str) -> bool:
    return code == name or code.startswith(name + "//")


class Subject:
    """One subject's events, split into static rows, the birth time, death times and timed events."""

    def __init__(self, sid: int, events: list[tuple[datetime | None, str, float | None]]) -> None:
        self.sid = sid
        self.static = [(c, v) for t, c, v in events if t is None]
        timed = [(t, c, v) for t, c, v in events if t is not None]
        # stable: same-time events keep their file order, but an admission opens its stay before the rest
        timed.sort(key=lambda e: (e[0], not _ADMIT.match(e[1])))
        births = [t for t, c, _ in timed if _is(c, "MEDS_BIRTH")]
        self.birth = births[0] if births else None
        self.deaths = [t for t, c, _ in timed if _is(c, "MEDS_DEATH")]
        self.timed = [e for e in timed if not _is(e[1], "MEDS_BIRTH") and not _is(e[1], "MEDS_DEATH")]
        self.times = [t for t, _, _ in self.timed]

    def upto(self, when: datetime) -> list[tuple[datetime, str, float | None]]:
        """Events at or before ``when`` (inclusive, as MEDS prediction times are)."""
        return self.timed[: bisect.bisect_right(self.times, when)]


def subjects(events: list[Event]) -> dict[int, Subject]:
    by_subject: dict[int, list[tuple[datetime | None, str, float | None]]] = defaultdict(list)
    for sid, t, code, value in events:
        by_subject[sid].append((t, code, value))
    return {sid: Subject(sid, rows) for sid, rows in sorted(by_subject.items())}


def assign_visits(timed: list[tuple[datetime, str, float | None]]) -> tuple[list[int], list[datetime]]:
    """Visit index per event (from earlier events only) and each visit's start time."""
    index: list[int] = []
    starts: list[datetime] = []
    stay_open, stay_end, day = False, None, None
    for t, code, _ in timed:
        if stay_end is not None and t > stay_end:
            stay_open, stay_end = False, None
        if _ADMIT.match(code) and not (stay_open and t == starts[-1]):
            starts.append(t)
            stay_open, stay_end, day = True, None, None
        elif not stay_open:
            if day != t.date():
                starts.append(t)
                day = t.date()
        elif _DISCH.match(code):
            stay_end = t
        index.append(len(starts) - 1)
    return index, starts


def _sequence(subject: Subject, timed: list[tuple[datetime, str, float | None]], visit_index: list[int]
              ) -> dict[str, list[Any]]:
    first = timed[0][0] if timed else None

    def age(t: datetime | None) -> int:
        return age_between(subject.birth, t) if subject.birth and t else 0

    codes = [c for c, _ in subject.static] + [c for _, c, _ in timed]
    values = [v for _, v in subject.static] + [v for _, _, v in timed]
    ages = [age(first)] * len(subject.static) + [age(t) for t, _, _ in timed]
    visits = [0] * len(subject.static) + visit_index
    days = [0] * len(subject.static) + [(t - first).days for t, _, _ in timed] if first else [0] * len(codes)
    return {"codes": codes, "ages": ages, "visits": visits, "days": days, "values": values}


def codes_records(subs: dict[int, Subject], stats: dict[str, int]) -> list[dict[str, Any]]:
    """History of all visits but the last; ``mortality`` when a death falls inside the last visit."""
    out = []
    for sid, s in subs.items():
        if s.birth is None:
            stats["subjects_without_birth"] += 1
        index, starts = assign_visits(s.timed)
        if len(starts) < 2:
            stats["subjects_with_one_visit"] += 1
            continue
        cut = index.index(len(starts) - 1)
        history, last = s.timed[:cut], s.timed[cut:]
        end = last[-1][0] + _SLACK
        record = {"patient_id": sid, **_sequence(s, history, index[:cut])}
        record["mortality"] = int(any(starts[-1] <= d <= end for d in s.deaths))
        record["next_visit_codes"] = list(dict.fromkeys(c for _, c, _ in last))
        record["prediction_time"] = starts[-1].isoformat()
        record["prediction_day"] = (starts[-1] - history[0][0]).days if history else 0  # on the scale of "days"
        out.append(record)
    return out


def label_records(subs: dict[int, Subject], labels: list[tuple[int, datetime, bool]], stats: dict[str, int]
                  ) -> list[dict[str, Any]]:
    """One record per label row, built only from events at or before its prediction time."""
    out = []
    for sid, when, value in labels:
        s = subs.get(sid)
        if s is None:
            stats["labels_unknown_subject"] += 1
            continue
        timed = s.upto(when)
        index, _ = assign_visits(timed)
        if not timed and not s.static:
            stats["labels_without_events"] += 1
        out.append({"patient_id": sid, "prediction_time": when.isoformat(), **_sequence(s, timed, index),
                    "label": int(value), "prediction_day": (when - timed[0][0]).days if timed else 0})
    stats["subjects_without_birth"] += sum(1 for sid in {r["patient_id"] for r in out} if subs[sid].birth is None)
    return out
