"""The synthetic MIMIC-III generator: determinism, schema, MIMIC conventions, realistic code mix."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from ehrdebug.data import synth
from ehrdebug.data.icd9_catalog import DX, PROC
from ehrdebug.data.synth_spec import ETHNICITIES


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    out = tmp_path_factory.mktemp("synth")
    synth.synthesize(str(out), 1500, seed=7)
    return {t: list(csv.DictReader((out / f"{t}.csv").open(newline=""))) for t in synth.TABLES}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        synth.synthesize(str(tmp_path / name), 300, seed=seed, compress=name != "a")
    a, b, c = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert {k.removesuffix(".gz"): gzip.decompress(v) for k, v in b.items()} == a
    synth.synthesize(str(tmp_path / "b2"), 300, seed=3, compress=True)
    assert _bytes(tmp_path / "b2") == b  # gzip output is byte-reproducible too (mtime 0)
    assert a["DIAGNOSES_ICD.csv"] != gzip.decompress(c["DIAGNOSES_ICD.csv.gz"])


def test_columns_are_mimic3_v14(tables: dict[str, list[dict[str, str]]]) -> None:
    assert list(tables["PATIENTS"][0]) == ["ROW_ID", "SUBJECT_ID", "GENDER", "DOB", "DOD", "DOD_HOSP", "DOD_SSN",
                                           "EXPIRE_FLAG"]
    assert list(tables["ADMISSIONS"][0])[:6] == ["ROW_ID", "SUBJECT_ID", "HADM_ID", "ADMITTIME", "DISCHTIME", "DEATHTIME"]
    assert "HOSPITAL_EXPIRE_FLAG" in tables["ADMISSIONS"][0] and "HAS_CHARTEVENTS_DATA" in tables["ADMISSIONS"][0]
    for t in ("DIAGNOSES_ICD", "PROCEDURES_ICD"):
        assert list(tables[t][0]) == ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"]


def test_codes_are_real_undotted_icd9(tables: dict[str, list[dict[str, str]]]) -> None:
    dx = [r["ICD9_CODE"] for r in tables["DIAGNOSES_ICD"]]
    px = [r["ICD9_CODE"] for r in tables["PROCEDURES_ICD"]]
    assert not [c for c in dx + px if "." in c]
    assert set(dx) <= set(DX) and set(px) <= set(PROC)
    counts = Counter(dx)
    assert len(counts) > 180  # a long tail over a few hundred real codes
    top = [c for c, _ in counts.most_common(10)]
    assert "4019" in top[:3] and {"41401", "4280", "2724"} & set(top)
    assert counts.most_common()[-1][1] < counts["4019"] / 100
    for code in ("V053", "V3000", "486", "99592", "0389", "5070", "7742"):
        assert counts[code] > 0, code


def test_mimic_date_and_age_conventions(tables: dict[str, list[dict[str, str]]]) -> None:
    admits = {r["SUBJECT_ID"]: [] for r in tables["PATIENTS"]}
    for r in tables["ADMISSIONS"]:
        admits[r["SUBJECT_ID"]].append(datetime.fromisoformat(r["ADMITTIME"]))
        assert 2100 <= int(r["ADMITTIME"][:4]) < 2200
    ages = []
    for p in tables["PATIENTS"]:
        dob = datetime.fromisoformat(p["DOB"])
        first = min(admits[p["SUBJECT_ID"]])
        ages.append(first.year - dob.year - ((first.month, first.day) < (dob.month, dob.day)))
    assert sum(a >= 299 for a in ages) > 0  # over-89s: DOB ~300 years before the first stay
    assert not [a for a in ages if 90 <= a < 299]
    assert sum(a == 0 for a in ages) > 0  # newborns
    assert {r["ETHNICITY"] for r in tables["ADMISSIONS"]} <= {e for e, _ in ETHNICITIES}
    assert "BLACK/AFRICAN AMERICAN" in {r["ETHNICITY"] for r in tables["ADMISSIONS"]}


def test_death_flags_agree_with_times(tables: dict[str, list[dict[str, str]]]) -> None:
    rows = tables["ADMISSIONS"]
    died = [r for r in rows if r["HOSPITAL_EXPIRE_FLAG"] == "1"]
    assert all(r["DEATHTIME"] and r["DISCHARGE_LOCATION"] == "DEAD/EXPIRED" for r in died)
    assert 0.05 < len(died) / len(rows) < 0.15  # MIMIC-III: about 10% of stays end in death
    patients = {p["SUBJECT_ID"]: p for p in tables["PATIENTS"]}
    assert all(patients[r["SUBJECT_ID"]]["DOD_HOSP"] for r in died)
    # deaths after discharge exist too (EXPIRE_FLAG 1 with no DOD_HOSP), as in MIMIC
    assert any(p["EXPIRE_FLAG"] == "1" and not p["DOD_HOSP"] for p in tables["PATIENTS"])


def test_generate_rejects_zero_patients() -> None:
    with pytest.raises(ValueError):
        synth.generate(0)
