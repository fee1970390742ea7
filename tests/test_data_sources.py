"""Reading real-shaped sources: MIMIC-III, MIMIC-IV (ICD-9 and 10), MEDS parquet, and their quirks."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from ehrdebug.data.build import build_task, codes_records, seq2seq_records
from ehrdebug.data.coding import coding_records
from ehrdebug.data.meds import load_meds
from ehrdebug.data.mimic import load_mimic3, load_mimic4
from ehrdebug.errors import UserError
from ehrdebug.grammar import parse_sequence

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def write_meds(path: Path, rows: list[dict] | None = None) -> Path:
    """The MEDS fixture (JSON Lines, readable in review) written as the parquet MEDS actually is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows is None:
        rows = [json.loads(line) for line in (FIXTURES / "meds_events.jsonl").read_text().splitlines()]
    table = pa.table({
        "subject_id": pa.array([r["subject_id"] for r in rows], pa.int64()),
        "time": pa.array([datetime.fromisoformat(r["time"]) if r["time"] else None for r in rows], pa.timestamp("us")),
        "code": pa.array([r["code"] for r in rows], pa.string()),
        "numeric_value": pa.array([r["numeric_value"] for r in rows], pa.float32()),
    })
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path / "0.parquet")
    return path


def test_mimic3_fixture_quirks() -> None:
    patients, stats = load_mimic3(str(FIXTURES / "mimic3_small"))
    by_id = {p.patient_id: p for p in patients}
    assert set(by_id) == {249, 250, 251, 252, 253}  # 254 has no stay; 999's stay has no patient
    assert stats["admissions_without_patient"] == 1 and stats["diagnoses_blank"] == 1
    assert stats["diagnoses_unknown_admission"] == 1
    old = by_id[252]
    assert [v.age for v in old.visits] == [90, 90]  # DOB 300 years back: capped, not 300
    assert [v.died for v in old.visits] == [False, True]
    assert by_id[249].visits[0].codes[0] == ("icd9", "5789")  # ordered by SEQ_NUM, not file order
    assert by_id[253].visits[0].age == 0 and by_id[250].ethnicity == "BLACK/AFRICAN AMERICAN"
    texts = {r["patient_id"]: r["text"] for r in seq2seq_records(patients)}
    assert texts[252] == "90 UNKNOWN/NOT SPECIFIED M <demo> <v> 486 401.9 <\\v> <v> 038.42 995.92 599.0 <\\v> <END>"
    assert texts[253] == "0 HISPANIC OR LATINO F <demo> <v> V3001 V053 774.2 765.19 <\\v> <END>"
    assert all(parse_sequence(t).valid for t in texts.values())
    codes = {r["patient_id"]: r for r in codes_records(patients)}
    assert set(codes) == {249, 252} and codes[252]["mortality"] == 1 and codes[249]["mortality"] == 0
    assert codes[249]["next_visit_codes"] == ["428.23", "428.0", "401.9", "V5861"]


def test_mimic4_fixture_ages_and_icd10() -> None:
    patients, stats = load_mimic4(str(FIXTURES / "mimic4_small"))
    by_id = {p.patient_id: p for p in patients}
    assert by_id[10000117].visits[0].age == 90  # anchor_age 91 (over 89) comes out as 90
    assert by_id[10000084].visits[0].age == 72 and by_id[10000032].visits[1].died
    assert by_id[10000200].ethnicity == "UNKNOWN/NOT SPECIFIED"
    assert stats["diagnoses_bad_version"] == 1
    texts = {r["patient_id"]: r["text"] for r in seq2seq_records(patients)}
    assert texts[10000084] == "72 BLACK/AFRICAN AMERICAN M <demo> <v> I21.4 I10 E11.9 <\\v> <END>"
    assert texts[10000117] == "90 ASIAN - CHINESE F <demo> <v> J18.9 401.9 <\\v> <END>"
    assert all(parse_sequence(t).valid for t in texts.values())
    labels = {r["patient_id"]: r["output"] for r in coding_records(patients)}
    assert labels == {10000032: "91302008", 10000084: "22298006", 10000117: "233604007"}


def test_meds_fixture(tmp_path: Path) -> None:
    patients, stats = load_meds(str(write_meds(tmp_path / "meds" / "data")))
    assert stats == {"subjects_without_birth": 1}
    first, second = patients
    assert (first.sex, first.ethnicity) == ("F", "WHITE")
    assert [v.codes for v in first.visits] == [[("icd10", "E119"), ("icd9", "25000")], [("icd10", "J189")]]
    assert [v.died for v in first.visits] == [False, True] and [v.age for v in first.visits] == [59, 60]
    # no admission events: diagnoses grouped by calendar day; born 1920 → age capped at 90
    assert [len(v.codes) for v in second.visits] == [2, 1] and second.visits[0].age == 90
    assert codes_records(patients)[0]["mortality"] == 1
    assert seq2seq_records(patients)[0]["text"] == "59 WHITE F <demo> <v> E11.9 250.00 <\\v> <v> J18.9 <\\v> <END>"


def test_build_task_from_each_source(tmp_path: Path) -> None:
    meds = write_meds(tmp_path / "meds")
    for source, path in (("mimic3", FIXTURES / "mimic3_small"), ("mimic4", FIXTURES / "mimic4_small"), ("meds", meds)):
        out = tmp_path / source
        summary = build_task("seq2seq", source, str(path), str(out))
        assert sum(summary["splits"].values()) == summary["patients_read"] > 0
        lines = [line for s in ("train", "validation", "test") for line in (out / f"{s}.txt").read_text().splitlines()]
        assert lines and all(parse_sequence(line).valid for line in lines)
        assert (out / "codes.txt").read_text().strip()


@pytest.mark.parametrize(("rows", "message"), [
    ([{"subject_id": 1, "code": "MEDS_BIRTH"}], "missing column time"),
    ([{"subject_id": "p-1", "time": datetime(2020, 1, 1), "code": "MEDS_BIRTH"}], "subject_id must be an integer"),
    ([{"subject_id": 1, "time": "2020-01-01", "code": "MEDS_BIRTH"}], "time must be a timestamp"),
])
def test_bad_meds_input(tmp_path: Path, rows: list[dict], message: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    with pytest.raises(UserError, match=message):
        load_meds(str(tmp_path / "x.parquet"))


@pytest.mark.parametrize("layout", ["demo", "lower-gz"])
def test_mimic3_demo_spelling(tmp_path: Path, layout: str) -> None:
    """The real MIMIC-III demo (100 patients) ships upper-case file names with lower-case headers; some
    copies are lower-case and gzipped. Both must read exactly like the fixture."""
    import gzip

    for src in sorted((FIXTURES / "mimic3_small").iterdir()):
        raw = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
        header, _, body = raw.decode().partition("\n")
        data = (header.lower() + "\n" + body).encode()
        table = src.name.split(".")[0]
        if layout == "demo":
            (tmp_path / f"{table}.csv").write_bytes(data)
        else:
            (tmp_path / f"{table.lower()}.csv.gz").write_bytes(gzip.compress(data, mtime=0))
    expected, expected_stats = load_mimic3(str(FIXTURES / "mimic3_small"))
    patients, stats = load_mimic3(str(tmp_path))
    assert patients == expected and stats == expected_stats
    out = tmp_path / "codes"
    assert build_task("codes", "mimic3", str(tmp_path), str(out))["patients_read"] == 5
