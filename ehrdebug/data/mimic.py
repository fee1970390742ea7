"""Read MIMIC-III (upper-case CSVs) and MIMIC-IV ``hosp/`` (lower-case CSVs), gzipped or not.

Quirks are handled, not trusted: MIMIC-III's over-89 patients (DOB ~300 years back) and MIMIC-IV's
``anchor_age`` 91 both come out as age 90; diagnosis rows with a blank code or an unknown admission
are skipped and counted; codes are de-duplicated within a stay and ordered by ``SEQ_NUM``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from ehrdebug.data.records import (
    Code,
    PatientRecord,
    Visit,
    age_between,
    cap_age,
    normalize_code,
    normalize_ethnicity,
    normalize_sex,
    parse_time,
)
from ehrdebug.errors import UserError, require_dir


def find_table(root: str, name: str) -> str:
    """``root/NAME.csv[.gz]`` in any letter case, also under ``root/hosp/`` (MIMIC-IV layout)."""
    require_dir(root, "EHR directory")
    wanted = {f"{name}.csv".lower(), f"{name}.csv.gz".lower()}
    for folder in (root, os.path.join(root, "hosp")):
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if entry.lower() in wanted:
                return os.path.join(folder, entry)
    raise UserError(f"{root}: no {name} table (expected {name}.csv or {name}.csv.gz)")


def iter_table(path: str, required: list[str]) -> Iterator[dict[str, Any]]:
    """Rows with lower-cased column names; a missing required column is a one-line UserError naming it."""
    import zlib

    from ehrdebug.io.tables import iter_records

    first = True
    try:
        for record in iter_records(path, fmt="csv"):
            row = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
            if first:
                missing = [c for c in required if c.lower() not in row]
                if missing:
                    raise UserError(f"{path}: missing column {', '.join(missing)} (columns: {', '.join(record)})")
                first = False
            yield row
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or fake .gz, an unreadable file
        raise UserError(f"{path}: cannot be read as CSV ({exc})") from exc


def _int(value: object, path: str, column: str) -> int:
    try:
        return int(float(str(value).strip()))
    except ValueError as exc:
        raise UserError(f"{path}: column {column} must be a number, got {str(value)[:30]!r}") from exc


def _seq(value: object) -> int:
    try:
        return int(float(str(value).strip()))
    except ValueError:
        return 10**6


def _diagnoses(path: str, code_col: str, version_col: str | None, stats: dict[str, int]) -> dict[int, list[Code]]:
    required = ["subject_id", "hadm_id", "seq_num", code_col] + ([version_col] if version_col else [])
    rows: dict[int, list[tuple[int, Code]]] = defaultdict(list)
    for row in iter_table(path, required):
        system = "icd9"
        if version_col:
            version = str(row.get(version_col) or "").strip()
            if version not in ("9", "10"):
                stats["diagnoses_bad_version"] += 1
                continue
            system = "icd9" if version == "9" else "icd10"
        code = normalize_code(system, row.get(code_col) or "")
        hadm = str(row.get("hadm_id") or "").strip()
        if code is None or not hadm:
            stats["diagnoses_blank"] += 1
            continue
        rows[_int(hadm, path, "hadm_id")].append((_seq(row.get("seq_num")), code))
    return {h: list(dict.fromkeys(c for _, c in sorted(v, key=lambda t: t[0]))) for h, v in rows.items()}


def _assemble(patients: dict[int, tuple[str, Any]], admissions: list[dict[str, Any]], dx: dict[int, list[Code]],
              stats: dict[str, int]) -> list[PatientRecord]:
    by_patient: dict[int, PatientRecord] = {}
    for adm in sorted(admissions, key=lambda a: (a["subject_id"], a["admit"])):
        sid = adm["subject_id"]
        if sid not in patients:
            stats["admissions_without_patient"] += 1
            continue
        sex, age_fn = patients[sid]
        record = by_patient.setdefault(sid, PatientRecord(sid, sex, adm["ethnicity"]))
        codes = dx.get(adm["hadm_id"], [])
        if not codes:
            stats["admissions_without_diagnoses"] += 1
        record.visits.append(Visit(str(adm["hadm_id"]), adm["admit"], age_fn(adm["admit"]), codes, adm["died"],
                                   adm["discharge"]))
    known = set(adm["hadm_id"] for adm in admissions)
    stats["diagnoses_unknown_admission"] += sum(len(v) for h, v in dx.items() if h not in known)
    return [by_patient[k] for k in sorted(by_patient)]


def _admissions(path: str, ethnicity_cols: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for row in iter_table(path, ["subject_id", "hadm_id", "admittime"]):
        admit = parse_time(row.get("admittime"))
        if admit is None:
            raise UserError(f"{path}: admittime {str(row.get('admittime'))[:30]!r} is not a date-time")
        flag = str(row.get("hospital_expire_flag") or "").strip()
        died = flag in ("1", "1.0", "True", "true") or bool(parse_time(row.get("deathtime")))
        ethnicity = next((row[c] for c in ethnicity_cols if row.get(c)), "")
        out.append({"subject_id": _int(row["subject_id"], path, "subject_id"),
                    "hadm_id": _int(row["hadm_id"], path, "hadm_id"), "admit": admit,
                    "discharge": parse_time(row.get("dischtime")), "died": died,
                    "ethnicity": normalize_ethnicity(ethnicity)})
    return out


def load_mimic3(root: str) -> tuple[list[PatientRecord], dict[str, int]]:
    """MIMIC-III v1.4 (or ``ehrdebug data synth`` output): PATIENTS, ADMISSIONS, DIAGNOSES_ICD."""
    stats: dict[str, int] = defaultdict(int)
    path = find_table(root, "PATIENTS")
    patients: dict[int, tuple[str, Any]] = {}
    for row in iter_table(path, ["SUBJECT_ID", "GENDER", "DOB"]):
        dob = parse_time(row.get("dob"))
        if dob is None:
            raise UserError(f"{path}: DOB {str(row.get('dob'))[:30]!r} is not a date")
        patients[_int(row["subject_id"], path, "SUBJECT_ID")] = (
            normalize_sex(row.get("gender")), lambda when, dob=dob: age_between(dob, when))
    admissions = _admissions(find_table(root, "ADMISSIONS"), ("ethnicity",))
    dx = _diagnoses(find_table(root, "DIAGNOSES_ICD"), "icd9_code", None, stats)
    return _assemble(patients, admissions, dx, stats), dict(stats)


def load_mimic4(root: str) -> tuple[list[PatientRecord], dict[str, int]]:
    """MIMIC-IV ``hosp``: patients(anchor_age, anchor_year), admissions(race), diagnoses_icd (ICD-9 and 10)."""
    stats: dict[str, int] = defaultdict(int)
    path = find_table(root, "patients")
    patients: dict[int, tuple[str, Any]] = {}
    for row in iter_table(path, ["subject_id", "gender", "anchor_age", "anchor_year"]):
        anchor_age = _int(row["anchor_age"], path, "anchor_age")
        anchor_year = _int(row["anchor_year"], path, "anchor_year")
        patients[_int(row["subject_id"], path, "subject_id")] = (
            normalize_sex(row.get("gender")),
            lambda when, a=anchor_age, y=anchor_year: cap_age(a + when.year - y))
    admissions = _admissions(find_table(root, "admissions"), ("race", "ethnicity"))
    dx = _diagnoses(find_table(root, "diagnoses_icd"), "icd_code", "icd_version", stats)
    return _assemble(patients, admissions, dx, stats), dict(stats)
