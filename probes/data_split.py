"""data.split: leakage between train, validation and test.

Two kinds: the same patient in two splits (their other admissions teach the model the answer), and the
same example in two splits (an evaluation that measures memory). Both are counted per pair of
splits and shown with a few concrete cases.

An example is what the model learns from: in a generation task the prompt *and* its target. A prompt
repeated alone (demographics such as ``69 WHITE F <demo>`` that many patients share) is expected there
and is reported as information with its figure, never as a leak.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "data.split"
# share of an evaluation split that is a copy of another split from which duplicates are a warning
DUP_WARN_SHARE = 0.05
PATIENT_FIELD_GUESSES = ("patient_id", "subject_id", "person_id", "patient", "pid", "mrn")
# columns that hold the target of a prompt, guessed when only the prompt column is named
TARGET_FIELD_GUESSES = ("target", "output", "response", "answer", "completion", "summary", "label_text")


def guess_patient_field(record: Mapping[str, Any]) -> str | None:
    for name in PATIENT_FIELD_GUESSES:
        if name in record:
            return name
    return None


def _key(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def guess_target_field(record: Mapping[str, Any], text_field: str) -> str | None:
    for name in TARGET_FIELD_GUESSES:
        if name in record and name != text_field:
            return name
    return None


def _text_of(record: Mapping[str, Any], fields: Sequence[str], exclude: set[str]) -> str:
    """The example: the named columns (prompt and target); without them, every column except ids and labels."""
    if len(fields) == 1:
        return _key(record.get(fields[0]))
    if fields:
        return _key([record.get(f) for f in fields])
    return _key({k: v for k, v in record.items() if k not in exclude})


def _shared_rows(splits: Mapping[str, Sequence[Mapping[str, Any]]], names: Sequence[str], fields: Sequence[str],
                 exclude: set[str]) -> dict[tuple[str, str], tuple[int, list[str], dict[str, dict[str, int]]]]:
    """Per pair (a, b): rows of b whose example also occurs in a, the distinct shared keys, first rows by key."""
    keys = {n: {} for n in names}  # type: dict[str, dict[str, int]]
    for n in names:
        for i, r in enumerate(splits[n]):
            keys[n].setdefault(_text_of(r, fields, exclude), i)
    out = {}
    for a, b in combinations(names, 2):
        shared = [t for t in keys[b] if t in keys[a]]
        if shared:
            rows_b = sum(1 for r in splits[b] if _text_of(r, fields, exclude) in keys[a])
            out[(a, b)] = (rows_b, shared, keys)
    return out


def probe_split(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    patient_field: str | None = None,
    text_field: str | None = None,
    label_field: str | None = None,
    subject: str = "",
    target_field: str | None = None,
) -> list[Finding]:
    """Patients and whole examples (prompt and target) shared between splits; repeated prompts as info."""
    names = [n for n, rows in splits.items() if rows]
    first = next((splits[n][0] for n in names), None)
    if first is None:
        return [Finding(PROBE, Severity.INFO, "no records to compare", subject=subject)]
    pfield = patient_field or guess_patient_field(first)
    if patient_field and not any(patient_field in splits[n][0] for n in names):
        from ehrdebug.errors import UserError

        raise UserError(f"patient field {patient_field!r} not in the data (columns: {', '.join(map(str, first))})")
    tfield = text_field if text_field and text_field in first else None
    if text_field and tfield is None:
        from ehrdebug.errors import UserError

        raise UserError(f"text field {text_field!r} not in the data (columns: {', '.join(map(str, first))})")
    if target_field and target_field not in first:
        from ehrdebug.errors import UserError

        raise UserError(f"target field {target_field!r} not in the data (columns: {', '.join(map(str, first))})")
    gfield = target_field or (guess_target_field(first, tfield) if tfield else None)
    fields = [f for f in (tfield, gfield) if f]
    exclude = {x for x in (pfield, label_field, "id", "example_id", "hadm_id", "visit_id") if x}
    sizes = {n: len(splits[n]) for n in names}
    if len(names) < 2:
        return [Finding(PROBE, Severity.OK, f"one split only ({names[0]}): nothing to compare",
                        evidence={"rows": sizes}, subject=subject)]
    findings: list[Finding] = []
    evidence: dict[str, Any] = {"splits": sizes, "patient_field": pfield or "(none found)",
                                "compared_on": " + ".join(fields) or "all columns except ids and labels"}
    if pfield:
        patients = {n: {_key(r.get(pfield)) for r in splits[n] if r.get(pfield) is not None} for n in names}
        evidence["patients"] = {n: len(p) for n, p in patients.items()}
        for a, b in combinations(names, 2):
            shared = patients[a] & patients[b]
            if shared:
                rows_b = sum(1 for r in splits[b] if _key(r.get(pfield)) in shared)
                findings.append(Finding(
                    PROBE, Severity.FAIL,
                    f"{len(shared)} patients are in both {a} and {b} ({rows_b} of {sizes[b]} {b} examples)",
                    evidence={"pair": f"{a}/{b}", "shared_patients": len(shared),
                              f"{b}_examples_of_shared_patients": rows_b,
                              "share_of_" + b + "_patients": round(len(shared) / max(1, len(patients[b])), 4)},
                    examples=sorted(shared)[:5],
                    rule="a patient belongs to exactly one split", recipes=["split-by-patient"], subject=subject,
                ))
    for (a, b), (rows_b, shared_t, keys) in _shared_rows(splits, names, fields, exclude).items():
        findings.append(Finding(
            PROBE, Severity.WARN if rows_b / max(1, sizes[b]) >= DUP_WARN_SHARE else Severity.INFO,
            f"{rows_b} of {sizes[b]} {b} examples also appear in {a} ({len(shared_t)} distinct examples)",
            evidence={"pair": f"{a}/{b}", "duplicated_examples": rows_b, "distinct_texts": len(shared_t),
                      "share_of_" + b: round(rows_b / max(1, sizes[b]), 4), "compared_on": evidence["compared_on"]},
            examples=[{"text": t[:200], f"{a}_row": keys[a][t], f"{b}_row": keys[b][t]} for t in shared_t[:3]],
            rule=f"an evaluation example must not be a copy of another split's; a warning from {DUP_WARN_SHARE:.0%} "
                 "of the split (short common histories, e.g. newborns, recur across distinct patients)",
            recipes=["deduplicate-splits"], subject=subject,
        ))
    if len(fields) == 2:  # the prompt alone: expected to recur in a generation task, so a figure, not a leak
        repeats = {pair: v[0] for pair, v in _shared_rows(splits, names, fields[:1], exclude).items()}
        evidence["repeated_prompts"] = {f"{a}/{b}": n for (a, b), n in repeats.items()}
        for (a, b), n in repeats.items():
            findings.append(Finding(
                PROBE, Severity.INFO,
                f"{n} of {sizes[b]} {b} prompts ({fields[0]}) also occur in {a}; their targets are what is compared",
                evidence={"pair": f"{a}/{b}", "repeated_prompts": n, "share_of_" + b: round(n / max(1, sizes[b]), 4),
                          "prompt_field": fields[0], "target_field": fields[1]},
                rule="a prompt shared by many patients (demographics) is expected in a generation task; "
                     "only the same prompt with the same target, or the same patient, is a leak",
                subject=subject,
            ))
    if not any(f.severity != Severity.INFO or f.recipes for f in findings):
        title = "no patient and no example shared between " + ", ".join(names)
        if not pfield:
            title = "no example shared between " + ", ".join(names) + " (no patient field: pass --patient-field)"
        findings.insert(0, Finding(PROBE, Severity.OK, title, evidence=evidence, subject=subject))
    else:
        findings.append(Finding(PROBE, Severity.INFO, "split sizes", evidence=evidence, subject=subject))
    return findings
