"""data.label_leakage on the shipped codes records: healthy as shipped, a death code left in the input,
and events after the prediction time."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ehrdebug.findings import Severity

CODES = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


@pytest.fixture(scope="module")
def records():
    return [json.loads(line) for line in (CODES / "train.jsonl").read_text().splitlines()]


def test_shipped_records_do_not_leak(records):
    from probes.leakage import probe_label_leakage

    findings = probe_label_leakage(records)
    assert all(f.severity == Severity.OK for f in findings), [f.title for f in findings]
    assert findings[0].evidence["highest_positive_rate"] < 0.95
    assert findings[0].evidence["positives"] == sum(r["mortality"] for r in records)


def test_a_death_code_in_the_input_is_found_from_its_label_rate(records):
    from probes.leakage import probe_label_leakage

    rng = random.Random(0)
    leaked = []
    for r in records:  # ICD-9 798.1 (instantaneous death) recorded on the last visit of 70% of deaths
        r = dict(r)
        if r["mortality"] and rng.random() < 0.7:
            r["codes"] = [*r["codes"], "798.1"]
        leaked.append(r)
    findings = probe_label_leakage(leaked)
    fail = [f for f in findings if f.severity == Severity.FAIL]
    assert len(fail) == 1 and "798.1" in fail[0].title and "drop-outcome-codes" in fail[0].recipes
    top = fail[0].evidence["leaking_codes"][0]
    assert top["code"] == "798.1" and top["positive_rate"] == 1.0 and 0.5 < top["share_of_positives"] < 0.9
    # what the run drops before encoding (data.exclude_codes) is not in the input
    assert all(f.severity == Severity.OK for f in probe_label_leakage(leaked, exclude_codes=["798.1"]))
    # a code declared to record the outcome is reported even when it is rare
    named = probe_label_leakage(records[:50] + [{**records[0], "codes": ["MEDS_DEATH"], "mortality": 1}],
                                outcome_codes=["MEDS_DEATH"])
    assert [f.evidence["outcome_codes"][0]["code"] for f in named if f.severity == Severity.FAIL] == ["MEDS_DEATH"]


def test_events_after_the_prediction_time(records):
    from probes.leakage import probe_label_leakage

    cut = [{**r, "prediction_day": r["days"][-1]} for r in records]
    assert all(f.severity == Severity.OK for f in probe_label_leakage(cut))
    late = [{**r, "prediction_day": r["days"][0]} for r in records]  # everything after the first visit is the future
    fail = [f for f in probe_label_leakage(late) if f.severity == Severity.FAIL]
    multi = sum(1 for r in records if r["days"][-1] > r["days"][0])
    assert len(fail) == 1 and fail[0].evidence["records_with_later_events"] == multi and fail[0].examples
    iso = [{"codes": ["A", "B"], "times": ["2020-01-01T00:00", "2020-03-01T00:00"], "prediction_time": "2020-02-01T00:00",
            "label": 0}, {"codes": ["A"], "times": ["2020-01-05T00:00"], "prediction_time": "2020-02-01T00:00", "label": 1}]
    fail = [f for f in probe_label_leakage(iso) if "after their prediction time" in f.title]
    assert fail and fail[0].evidence["later_events"] == 1 and fail[0].examples[0]["late"][0]["code"] == "B"
