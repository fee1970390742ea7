"""MEDS as the standard lays it out: roots, metadata splits, any code vocabulary, values, label tasks.

Built against the MEDS project's own ``meds-testing-helpers`` datasets (its static sample with a task
and a generated dataset) as well as a hand-written root with births, deaths, stays and labs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from ehrdebug.data.build import build_task
from ehrdebug.data.meds_codes import assign_visits, label_records, subjects
from ehrdebug.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _events_table(rows: list[dict]):
    import pyarrow as pa

    return pa.table({
        "subject_id": pa.array([r["subject_id"] for r in rows], pa.int64()),
        "time": pa.array([datetime.fromisoformat(r["time"]) if r["time"] else None for r in rows], pa.timestamp("us")),
        "code": pa.array([r["code"] for r in rows], pa.string()),
        "numeric_value": pa.array([r["numeric_value"] for r in rows], pa.float32()),
    })


def write_root(root: Path, rows: list[dict] | None = None, splits: dict[int, str] | None = None) -> Path:
    """A standard MEDS root from the JSON Lines fixture: data/, metadata/{codes,subject_splits,dataset}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if rows is None:
        rows = [json.loads(line) for line in (FIXTURES / "meds_events.jsonl").read_text().splitlines()]
    (root / "data").mkdir(parents=True)
    (root / "metadata").mkdir()
    pq.write_table(_events_table(rows), root / "data" / "0.parquet")
    pq.write_table(pa.table({"code": ["LAB//50912//mg/dL"], "description": ["Creatinine"]}),
                   root / "metadata" / "codes.parquet")
    if splits is not None:
        pq.write_table(pa.table({"subject_id": pa.array(list(splits), pa.int64()), "split": list(splits.values())}),
                       root / "metadata" / "subject_splits.parquet")
    (root / "metadata" / "dataset.json").write_text(json.dumps({"dataset_name": "fixture", "meds_version": "0.4"}))
    return root


def write_labels(path: Path, rows: list[tuple[int, datetime, bool]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"subject_id": pa.array([r[0] for r in rows], pa.int64()),
                             "prediction_time": pa.array([r[1] for r in rows], pa.timestamp("us")),
                             "boolean_value": [r[2] for r in rows]}), path)
    return path


def read_split(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]


def test_standard_root_builds_codes_with_metadata_splits(tmp_path: Path) -> None:
    root = write_root(tmp_path / "meds", splits={1: "held_out", 2: "tuning"})
    summary = build_task("codes", "meds", str(root), str(tmp_path / "out"))
    assert summary["split_source"] == "metadata" and summary["dataset"] == "fixture"
    assert summary["splits"] == {"train": 0, "validation": 1, "test": 1}
    (first,) = read_split(tmp_path / "out", "test")
    # static rows first (day 0); the first stay holds its lab with its value; MEDS_BIRTH/DEATH are no input
    assert first["codes"] == ["GENDER//F", "RACE//WHITE", "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM",
                              "LAB//50912//mg/dL", "ICD10CM/E11.9", "ICD9CM/250.00", "HOSPITAL_DISCHARGE//HOME"]
    assert first["values"] == [None, None, None, 1.4, None, None, None]
    assert first["visits"] == [0] * 7 and first["days"] == [0, 0, 0, 0, 4, 4, 4] and first["ages"] == [59] * 7
    assert first["mortality"] == 1 and first["prediction_time"] == "2021-03-01T09:30:00"
    assert first["next_visit_codes"] == ["HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", "DIAGNOSIS//ICD//10//J189",
                                         "HOSPITAL_DISCHARGE//DIED"]
    (second,) = read_split(tmp_path / "out", "validation")
    # no admission events: calendar days are visits; born 1920 → age capped at 90
    assert second["codes"] == ["GENDER//M", "ICD9CM/486", "ICD9CM/401.9"] and second["ages"] == [90, 90, 90]
    assert second["mortality"] == 0 and second["next_visit_codes"] == ["ICD10CM/I10"]


def test_root_data_folder_and_single_file_read_the_same(tmp_path: Path) -> None:
    root = write_root(tmp_path / "meds")
    outs = []
    for i, path in enumerate((root, root / "data", root / "data" / "0.parquet")):
        summary = build_task("codes", "meds", str(path), str(tmp_path / f"o{i}"))
        outs.append([read_split(tmp_path / f"o{i}", s) for s in ("train", "validation", "test")])
        assert summary["split_source"] == "hash" and summary["patients_read"] == 3
    assert outs[0] == outs[1] == outs[2]
    seq = build_task("seq2seq", "meds", str(root), str(tmp_path / "s"))  # ICD-only tasks read the root too
    assert sum(seq["splits"].values()) == 2


def test_visits_from_stays_else_calendar_days() -> None:
    t = datetime.fromisoformat
    timed = [(t("2020-01-01T08:00"), "LAB//HR", 80.0), (t("2020-01-01T09:00"), "ADMISSION//CARDIAC", None),
             (t("2020-01-03T09:00"), "HR", 90.0), (t("2020-01-04T09:00"), "DISCHARGE", None),
             (t("2020-01-04T09:00"), "DIAGNOSIS//ICD//10//I21", None), (t("2020-01-04T10:00"), "LAB//HR", 70.0),
             (t("2020-01-04T11:00"), "MEDICATION//aspirin", None), (t("2020-01-06T11:00"), "LAB//HR", 72.0)]
    index, starts = assign_visits(timed)
    # a lab before the stay is its own day; coded-at-discharge events stay in the stay; after it, calendar days
    assert index == [0, 1, 1, 1, 1, 2, 2, 3] and starts[1] == t("2020-01-01T09:00")


def test_label_task_uses_only_events_up_to_prediction_time(tmp_path: Path) -> None:
    root = write_root(tmp_path / "meds")
    labels = write_labels(root / "task_labels" / "readmission" / "0.parquet",
                          [(1, datetime(2020, 1, 12), True), (1, datetime(2021, 3, 5, 12), False),
                           (2, datetime(2019, 2, 2, 10), False), (99, datetime(2020, 1, 1), True)])
    summary = build_task("codes", "meds", str(root), str(tmp_path / "out"), labels="readmission")
    assert summary["labels_read"] == 4 and summary["skipped"]["labels_unknown_subject"] == 1
    records = [r for s in ("train", "validation", "test") for r in read_split(tmp_path / "out", s)]
    by_time = {(r["patient_id"], r["prediction_time"]): r for r in records}
    early = by_time[(1, "2020-01-12T00:00:00")]
    assert early["codes"][-1] == "LAB//50912//mg/dL" and early["label"] == 1  # the diagnoses on 01-14 are later
    late = by_time[(1, "2021-03-05T12:00:00")]
    assert "DIAGNOSIS//ICD//10//J189" in late["codes"] and "MEDS_DEATH" not in late["codes"]  # inclusive cut
    assert by_time[(2, "2019-02-02T10:00:00")]["codes"] == ["GENDER//M", "ICD9CM/486"]
    same = build_task("codes", "meds", str(root), str(tmp_path / "again"), labels=str(labels))
    assert same["splits"] == summary["splits"]


def test_a_later_event_cannot_change_the_input(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (FIXTURES / "meds_events.jsonl").read_text().splitlines()]
    from ehrdebug.data.meds_io import read_events

    cut = [(1, datetime(2020, 1, 14, 12), True), (2, datetime(2019, 2, 2, 11), False)]

    def inputs(extra: list[dict]) -> list[dict]:
        root = write_root(tmp_path / f"m{len(list(tmp_path.iterdir()))}", rows + extra)
        events, _ = read_events([str(root / "data" / "0.parquet")])
        return label_records(subjects(events), cut, stats={"subjects_without_birth": 0})

    later = [{"subject_id": 1, "time": "2020-01-14T12:00:01", "code": "LAB//HR", "numeric_value": 99.0},
             {"subject_id": 1, "time": "2020-01-14T13:00:00", "code": "HOSPITAL_ADMISSION//X", "numeric_value": None},
             {"subject_id": 2, "time": "2019-02-02T11:00:00.000001", "code": "MEDS_DEATH", "numeric_value": None},
             {"subject_id": 2, "time": "2019-02-02T12:00:00", "code": "ICD9CM/7802", "numeric_value": None}]
    assert inputs(later) == inputs([])
    earlier = [{"subject_id": 1, "time": "2020-01-14T11:59:00", "code": "LAB//HR", "numeric_value": 99.0}]
    assert inputs(earlier) != inputs([])  # the comparison can see a change: an event before the cut enters


def test_bad_labels(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = write_root(tmp_path / "meds")
    with pytest.raises(UserError, match="MEDS labels not found"):
        build_task("codes", "meds", str(root), str(tmp_path / "o"), labels="nope")
    pq.write_table(pa.table({"subject_id": [1], "time": [datetime(2020, 1, 1)]}), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="missing column prediction_time"):
        build_task("codes", "meds", str(root), str(tmp_path / "o"), labels=str(tmp_path / "bad.parquet"))
    with pytest.raises(UserError, match="--labels reads MEDS task labels"):
        build_task("seq2seq", "meds", str(root), str(tmp_path / "o"), labels="x")


# --- the MEDS project's own test datasets (meds-testing-helpers) --------------------------------------


@pytest.fixture(scope="session")
def static_with_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dataset = pytest.importorskip("meds_testing_helpers.dataset")
    sample = pytest.importorskip("meds_testing_helpers.static_sample_data")
    root = tmp_path_factory.mktemp("meds_static") / "root"
    dataset.MEDSDataset.from_yaml(sample.SIMPLE_STATIC_SHARDED_BY_SPLIT_WITH_TASKS).write(root)
    return root


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset of 300 subjects (about 2 s), built once per test session."""
    pytest.importorskip("meds_testing_helpers.dataset_generator")
    root = tmp_path_factory.mktemp("meds_generated") / "root"
    args = ["seed=1", "N_subjects=300", "do_overwrite=False", f"output_dir={root}", "dataset_spec/data_generator=sample"]
    code = "from meds_testing_helpers.dataset_generator import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def test_static_sample_task_builds_labelled_records(static_with_task: Path, tmp_path: Path) -> None:
    summary = build_task("codes", "meds", str(static_with_task), str(tmp_path / "out"), labels="boolean_value_task")
    assert summary["labels_read"] == 21 and summary["split_source"] == "metadata"
    assert summary["splits"] == {"train": 13, "validation": 4, "test": 4}  # 754281 is tuning, 1500733 held_out
    records = read_split(tmp_path / "out", "validation")
    assert {r["patient_id"] for r in records} == {754281}
    first = min(records, key=lambda r: r["prediction_time"])
    assert first["prediction_time"] == "2010-01-03T06:30:00" and first["label"] == 0
    assert first["codes"] == ["EYE_COLOR//BROWN", "HEIGHT", "ADMISSION//PULMONARY", "HR", "TEMP"]
    assert first["values"][1] == pytest.approx(166.2226, abs=1e-3) and first["values"][3] == 142.0
    assert first["ages"] == [21] * 5  # born 1988-12-19
    for r in records:
        assert all(v <= r["visits"][-1] for v in r["visits"]) and len(set(map(len, (
            r["codes"], r["ages"], r["visits"], r["days"], r["values"])))) == 1


def test_cli_builds_a_meds_task(static_with_task: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.cli.app import main

    out = tmp_path / "task"
    argv = ["data", "build", "codes", str(static_with_task), "--source", "meds", "--labels", "boolean_value_task",
            "--out", str(out)]
    capsys.readouterr()
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["split_source"] == "metadata" and summary["label_rate"] == pytest.approx(12 / 21, abs=1e-4)
    assert main(argv) == 2 and "--force" in capsys.readouterr().err  # nothing overwritten
    assert main(argv[:-4] + ["--out", str(tmp_path / "x")]) == 2  # codes without labels: one stay each
    assert "no subject has two visits" in capsys.readouterr().err


def test_generated_dataset_builds_codes_with_metadata_splits(generated: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    summary = build_task("codes", "meds", str(generated), str(tmp_path / "out"))
    assert summary["split_source"] == "metadata" and summary["patients_read"] == 300
    splits = dict(zip(*(pq.read_table(generated / "metadata" / "subject_splits.parquet").column(c).to_pylist()
                        for c in ("subject_id", "split")), strict=True))
    name = {"train": "train", "tuning": "validation", "held_out": "test"}
    for split in ("train", "validation", "test"):
        records = read_split(tmp_path / "out", split)
        assert records and all(name[splits[r["patient_id"]]] == split for r in records)
    assert sum(summary["splits"].values()) > 250 and summary["events_with_values"] > 0
    assert summary["codes"] >= 8  # static//N and dynamic//N: a vocabulary that is not ICD at all
