"""Codes records for in-hospital mortality predicted 24 h into the last stay, built with the common bug.

MEDS tasks predict at a ``prediction_time`` (here: 24 h after the last admission) and only events at or
before it may enter the input. A home-made extraction that takes each subject's events up to the end of
the record (or of the stay) instead keeps the last stay's diagnoses, which MIMIC (and the MEDS MIMIC ETL)
time-stamp at discharge, days after the prediction time. ``late_events_dir`` writes such records from the
shipped codes records: their history, then the last stay (the records' ``next_visit_codes``) coded at its
discharge, each event with its ISO ``times`` and the record's ISO ``prediction_time``. Nothing in a record
says it leaks: the probe compares the times.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ORIGIN = datetime(2150, 1, 1)  # MIMIC-style shifted dates
PREDICT_AFTER = timedelta(hours=24)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="minutes")


def with_last_stay(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The record with event times, a prediction time 24 h into the last stay, and that stay's codes at its
    discharge (after the prediction time) appended to the input."""
    start = ORIGIN + timedelta(days=rng.randrange(3650), hours=rng.randrange(24))
    days = [int(d) for d in record.get("days") or [0] * len(record["codes"])]
    out = dict(record)
    out["times"] = [_iso(start + timedelta(days=d, hours=12)) for d in days]
    admit = start + timedelta(days=(days[-1] if days else 0) + rng.randint(20, 400), hours=rng.randrange(24))
    discharge = admit + timedelta(days=rng.randint(2, 12), hours=rng.randrange(24))
    out["prediction_time"] = _iso(admit + PREDICT_AFTER)
    last = list(dict.fromkeys(record.get("next_visit_codes") or []))
    gap_years = (discharge - start).days // 365 - (days[-1] // 365 if days else 0)
    age = (record.get("ages") or [0])[-1] + max(0, gap_years)
    visit = (max(record.get("visits") or [0])) + 1
    day = (discharge - start).days
    out["codes"] = [*record["codes"], *last]
    out["times"] = [*out["times"], *[_iso(discharge)] * len(last)]
    for key, value in (("ages", age), ("visits", visit), ("days", day)):
        if isinstance(record.get(key), list):
            out[key] = [*record[key], *[value] * len(last)]
    if isinstance(record.get("values"), list):
        out["values"] = [*record["values"], *[None] * len(last)]
    return out


def late_events_dir(dest: str | Path, seed: int = 0) -> Path:
    """``dest/{train,validation,test}.jsonl`` from the shipped codes records (written once); returns ``dest``."""
    from ehrdebug.data.sample import read_jsonl, sample_data_dir

    out = Path(dest)
    if (out / ".complete").is_file():
        return out
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        rows = [with_last_stay(r, rng) for r in read_jsonl(sample_data_dir() / "codes" / f"{split}.jsonl") if r.get("codes")]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out / ".complete").write_text("", encoding="utf-8")
    return out


def prepare_late_events(root: Path) -> tuple[str, ...]:
    """The mortality-at-24h records with the last stay's discharge codes left in the input."""
    return (f"data.codes_dir={late_events_dir(Path(root) / 'codes-mortality-24h-uncut').resolve()}",)
