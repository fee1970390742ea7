"""data.label_leakage: the outcome written into the input, measured on the records themselves.

Two ways a binary task leaks. A code that records the outcome (a death code, a discharge-to-morgue
event, the MEDS ``MEDS_DEATH`` row) stays in the input: found from evidence as a code whose records are
almost all positive and that covers a real share of the positives. Or the input holds events after the
prediction time: found wherever records carry per-event times and a prediction time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import rounded

PROBE = "data.label_leakage"
LABEL_GUESSES = ("label", "mortality", "boolean_value", "y", "outcome")
TIME_GUESSES = ("days", "times", "time")
PREDICTION_GUESSES = ("prediction_day", "prediction_time", "prediction_days")
POSITIVE_RATE = 0.95  # share of a code's records that are positive
POSITIVE_COVERAGE = 0.05  # share of all positives the code is in
MIN_SUPPORT = 5


def _label(record: Mapping[str, Any], field: str) -> int | None:
    value = record.get(field)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return int(value != 0)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return int(value.strip().lower() in ("1", "true"))
    return None


def _guess(record: Mapping[str, Any], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in record and record[n] is not None), None)


def probe_label_leakage(
    records: Sequence[Mapping[str, Any]],
    *,
    label_field: str | None = None,
    codes_field: str = "codes",
    time_field: str | None = None,
    prediction_field: str | None = None,
    outcome_codes: Sequence[str] = (),
    exclude_codes: Sequence[str] = (),
    positive_rate: float = POSITIVE_RATE,
    positive_coverage: float = POSITIVE_COVERAGE,
    min_support: int = MIN_SUPPORT,
    subject: str = "",
) -> list[Finding]:
    """Per-code positive rates (codes that give the label away) and events later than the prediction time.

    ``records`` are code-sequence records (``codes``, per-code ``days``, a 0/1 label such as ``mortality``).
    ``outcome_codes`` are codes known to record the outcome (e.g. ``MEDS_DEATH``): any presence is reported.
    ``exclude_codes`` are codes the run drops before encoding (its ``data.exclude_codes``): not in the input.
    """
    if exclude_codes:
        records = [_without(r, codes_field, set(map(str, exclude_codes))) for r in records]
    if not records:
        return [Finding(PROBE, Severity.INFO, "no records to check for leakage", subject=subject)]
    first = records[0]
    field = label_field or _guess(first, LABEL_GUESSES)
    if field is None:
        return [Finding(PROBE, Severity.INFO, "no binary label in the records: nothing can leak into the input",
                        evidence={"looked_for": list(LABEL_GUESSES), "keys": sorted(map(str, first))[:20]},
                        subject=subject)]
    findings = _outcome_codes(records, field, codes_field, outcome_codes, positive_rate, positive_coverage,
                              min_support, subject)
    findings += _after_prediction(records, codes_field, time_field, prediction_field, subject)
    return findings


def _without(record: Mapping[str, Any], codes_field: str, drop: set[str]) -> dict[str, Any]:
    """The record without the ``drop`` codes, its per-code lists (times, ages, visits) kept aligned."""
    codes = list(record.get(codes_field) or ())
    keep = [i for i, c in enumerate(codes) if str(c) not in drop]
    out = dict(record)
    for key, value in record.items():
        if isinstance(value, list) and len(value) == len(codes):
            out[key] = [value[i] for i in keep]
    return out


def code_label_table(records: Sequence[Mapping[str, Any]], label_field: str, codes_field: str = "codes") -> tuple[
        Counter[str], Counter[str], int, int]:
    """(records containing each code, positives among them, labelled records, positives)."""
    seen: Counter[str] = Counter()
    positive: Counter[str] = Counter()
    n = pos = 0
    for record in records:
        label = _label(record, label_field)
        if label is None:
            continue
        n += 1
        pos += label
        for code in set(map(str, record.get(codes_field) or ())):
            seen[code] += 1
            positive[code] += label
    return seen, positive, n, pos


def _leak_rows(seen: Counter[str], positive: Counter[str], n: int, pos: int, rate: float, coverage: float,
               support: int) -> list[dict[str, Any]]:
    prevalence = pos / n
    rows = []
    for code, count in seen.items():
        share = positive[code] / count
        cover = positive[code] / pos
        if count >= support and share >= rate and cover >= coverage and share > prevalence:
            rows.append({"code": code, "records": count, "positives": positive[code], "positive_rate": rounded(share),
                         "share_of_positives": rounded(cover), "lift": rounded(share / prevalence, 2)})
    return sorted(rows, key=lambda r: (-r["share_of_positives"], -r["positive_rate"]))


def leaking_codes(records: Sequence[Mapping[str, Any]], label_field: str | None = None, codes_field: str = "codes",
                  positive_rate: float = POSITIVE_RATE, positive_coverage: float = POSITIVE_COVERAGE,
                  min_support: int = MIN_SUPPORT) -> list[str]:
    """The codes ``probe_label_leakage`` blames, most of the positives first (for the fix that drops them)."""
    if not records:
        return []
    field = label_field or _guess(records[0], LABEL_GUESSES)
    if field is None:
        return []
    seen, positive, n, pos = code_label_table(records, field, codes_field)
    if not n or not pos or pos == n:
        return []
    return [r["code"] for r in _leak_rows(seen, positive, n, pos, positive_rate, positive_coverage, min_support)]


def _outcome_codes(records: Sequence[Mapping[str, Any]], field: str, codes_field: str, outcome_codes: Sequence[str],
                   rate: float, coverage: float, support: int, subject: str) -> list[Finding]:
    seen, positive, n, pos = code_label_table(records, field, codes_field)
    if not n or not pos or pos == n:
        return [Finding(PROBE, Severity.INFO, f"{field!r} has a single class in {n} records: no per-code rates",
                        evidence={"records": n, "positives": pos}, subject=subject)]
    prevalence = pos / n
    rows = _leak_rows(seen, positive, n, pos, rate, coverage, support)
    named = [{"code": c, "records": seen[c], "positives": positive[c]} for c in outcome_codes if seen.get(c)]
    base = {"label_field": field, "records": n, "positives": pos, "prevalence": rounded(prevalence),
            "distinct_codes": len(seen)}
    findings: list[Finding] = []
    if rows:
        covered = _covered(records, field, codes_field, {r["code"] for r in rows})
        top = rows[0]
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"code {top['code']} gives the label away: {top['positive_rate']:.0%} of its {top['records']} records are "
            f"positive (prevalence {prevalence:.1%}) and it is in {top['share_of_positives']:.0%} of the positives"
            + (f"; {len(rows) - 1} more such codes" if len(rows) > 1 else ""),
            evidence={**base, "leaking_codes": rows[:10], "positives_with_a_leaking_code": covered,
                      "share_of_positives_covered": rounded(covered / pos)},
            examples=[f"{r['code']}: {r['positives']}/{r['records']} positive" for r in rows[:5]],
            rule=f"a code in ≥ {support} records with a positive rate ≥ {rate:.0%} covering ≥ {coverage:.0%} of the "
                 "positives records the outcome itself (or something after it)",
            recipes=["drop-outcome-codes"], subject=subject,
        ))
    if named:
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"outcome codes in the input: {', '.join(r['code'] for r in named)}",
            evidence={**base, "outcome_codes": named},
            rule="codes declared to record the outcome must not be in the model's input",
            recipes=["drop-outcome-codes"], subject=subject,
        ))
    if not findings:
        best = max(((c, positive[c] / seen[c]) for c in seen if seen[c] >= support), key=lambda kv: kv[1], default=None)
        findings.append(Finding(
            PROBE, Severity.OK,
            f"no code gives {field!r} away: highest positive rate "
            + (f"{best[1]:.0%} ({best[0]}, {seen[best[0]]} records)" if best else "n/a")
            + f" against a prevalence of {prevalence:.1%}",
            evidence={**base, "highest_positive_rate": rounded(best[1]) if best else None,
                      "highest_code": best[0] if best else None, "min_support": support},
            subject=subject,
        ))
    return findings


def _covered(records: Sequence[Mapping[str, Any]], field: str, codes_field: str, codes: set[str]) -> int:
    return sum(1 for r in records if _label(r, field) == 1 and codes & set(map(str, r.get(codes_field) or ())))


def _as_time(value: Any) -> float | None:
    """Days (numbers) or ISO times (seconds since the epoch) as one comparable float."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def _comparable(a: Any, b: Any) -> bool:
    """ISO times compare with ISO times, numbers (days) with numbers; days against an ISO time do not."""
    return isinstance(a, str) == isinstance(b, str) and _as_time(a) is not None and _as_time(b) is not None


def time_fields(record: Mapping[str, Any], time_field: str | None = None,
                prediction_field: str | None = None) -> tuple[str | None, str | None]:
    """The record's per-event time list and prediction time, preferring a pair that compares (``days`` with
    ``prediction_day``, ``times`` with an ISO ``prediction_time``); else the first of each found."""
    tnames = (time_field,) if time_field else TIME_GUESSES
    pnames = (prediction_field,) if prediction_field else PREDICTION_GUESSES
    for t in tnames:
        times = record.get(t)
        if not isinstance(times, list) or not times:
            continue
        for q in pnames:
            if record.get(q) is not None and _comparable(times[0], record[q]):
                return t, q
    return time_field or _guess(record, TIME_GUESSES), prediction_field or _guess(record, PREDICTION_GUESSES)


def late_positions(record: Mapping[str, Any], time_field: str, prediction_field: str) -> list[int] | None:
    """Indices of the events later than the record's prediction time; None when the two do not compare."""
    cut = record.get(prediction_field)
    times = record.get(time_field) or ()
    if _as_time(cut) is None or not times or not _comparable(times[0], cut):
        return None
    limit = _as_time(cut)
    return [i for i, t in enumerate(times) if (v := _as_time(t)) is not None and v > limit]  # type: ignore[operator]


def cut_at_prediction(record: Mapping[str, Any], time_field: str | None = None,
                      prediction_field: str | None = None) -> tuple[dict[str, Any], int]:
    """The record without its events after the prediction time (every per-event list kept aligned) and how
    many were dropped; unchanged when it has no comparable times."""
    tfield, pfield = time_fields(record, time_field, prediction_field)
    late = late_positions(record, tfield, pfield) if tfield and pfield else None
    if not late:
        return dict(record), 0
    n, drop = len(record[tfield]), set(late)
    out = dict(record)
    for key, value in record.items():
        if isinstance(value, list) and len(value) == n:
            out[key] = [v for i, v in enumerate(value) if i not in drop]
    return out, len(late)


def _after_prediction(records: Sequence[Mapping[str, Any]], codes_field: str, time_field: str | None,
                      prediction_field: str | None, subject: str) -> list[Finding]:
    tfield, pfield = time_fields(records[0], time_field, prediction_field)
    if tfield is None or pfield is None:
        return [Finding(PROBE, Severity.OK, "records carry no per-event time and prediction time: "
                        "events after the prediction time cannot be checked here (MEDS tasks cut at prediction_time)",
                        evidence={"time_field": tfield, "prediction_field": pfield}, subject=subject)]
    late_records = late_events = events = compared = mismatched = 0
    examples: list[dict[str, Any]] = []
    for record in records:
        times = record.get(tfield) or ()
        if _as_time(record.get(pfield)) is None or not times:
            continue
        late = late_positions(record, tfield, pfield)
        if late is None:
            mismatched += 1  # days since the first event against an ISO time: not comparable
            continue
        compared += 1
        events += len(times)
        if late:
            late_records += 1
            late_events += len(late)
            if len(examples) < 5:
                codes = list(record.get(codes_field) or ())
                examples.append({"patient_id": record.get("patient_id"), pfield: record.get(pfield),
                                 "late": [{"code": codes[i] if i < len(codes) else None, tfield: times[i]} for i in late[:4]]})
    evidence = {"time_field": tfield, "prediction_field": pfield, "records_compared": compared, "events": events,
                "records_with_later_events": late_records, "later_events": late_events,
                "records_with_incomparable_times": mismatched}
    if late_records:
        return [Finding(
            PROBE, Severity.FAIL,
            f"{late_records} of {compared} records ({late_records / compared:.0%}) hold {late_events} events after their "
            f"prediction time: the input sees the future",
            evidence=evidence, examples=examples,
            rule=f"only events at or before the prediction time may enter the input ({tfield} ≤ {pfield})",
            recipes=["cut-at-prediction-time"], subject=subject,
        )]
    if not compared:
        return [Finding(PROBE, Severity.INFO, f"no record has both {tfield!r} and {pfield!r}", evidence=evidence,
                        subject=subject)]
    return [Finding(PROBE, Severity.OK, f"no event after the prediction time in {compared} records ({events} events)",
                    evidence=evidence, subject=subject)]
