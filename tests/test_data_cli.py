"""``ehrdebug data synth`` / ``data build`` end to end, and user errors as one line with exit 2."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.grammar import parse_sequence

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def test_synth_then_build_every_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw"
    assert main(["data", "synth", "--patients", "400", "--seed", "5", "--out", str(raw), "--gzip"]) == 0
    assert sorted(p.name for p in raw.iterdir()) == ["ADMISSIONS.csv.gz", "DIAGNOSES_ICD.csv.gz", "PATIENTS.csv.gz",
                                                     "PROCEDURES_ICD.csv.gz"]
    for task in ("seq2seq", "codes", "coding", "diagnosis"):
        args = ["data", "build", task, "--out", str(tmp_path / task)]
        if task != "diagnosis":
            args[3:3] = [str(raw), "--source", "synthetic"]
        capsys.readouterr()
        assert main(args) == 0, task
        summary = json.loads(capsys.readouterr().out)
        assert summary["task"] == task and sum(summary["splits"].values()) > 0
    lines = (tmp_path / "seq2seq" / "train.txt").read_text().splitlines()
    assert lines and all(parse_sequence(line).valid for line in lines)
    assert main(["data", "build", "seq2seq", str(raw), "--out", str(tmp_path / "s2"), "--code-style", "mimic",
                 "--max-visits", "1", "--max-codes", "2"]) == 0
    line = (tmp_path / "s2" / "train.txt").read_text().splitlines()[0]
    assert len(parse_sequence(line).visits) == 1 and len(parse_sequence(line).codes) <= 2


def test_build_without_path_generates_synthetic(tmp_path: Path) -> None:
    assert main(["data", "build", "codes", "--patients", "300", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "train.jsonl").stat().st_size > 0


def _copy_mimic3(tmp_path: Path) -> Path:
    folder = tmp_path / "m3"
    shutil.copytree(FIXTURES / "mimic3_small", folder)
    return folder


def _empty(folder: Path) -> None:
    (folder / "ADMISSIONS.csv").write_text("")


def _no_column(folder: Path) -> None:
    text = (folder / "PATIENTS.csv").read_text().replace('"DOB"', '"BIRTHDATE"')
    (folder / "PATIENTS.csv").write_text(text)


def _missing_table(folder: Path) -> None:
    (folder / "DIAGNOSES_ICD.csv.gz").unlink()


def _bad_gzip(folder: Path) -> None:
    (folder / "DIAGNOSES_ICD.csv.gz").write_bytes(gzip.compress(b"ROW_ID,SEQ\n\xff\xfe binary"))


def _fake_gzip(folder: Path) -> None:
    (folder / "DIAGNOSES_ICD.csv.gz").write_bytes(b"ROW_ID,SUBJECT_ID\n1,2\n")


def _bad_date(folder: Path) -> None:
    text = (folder / "ADMISSIONS.csv").read_text().replace("2149-12-17 20:41:00", "yesterday")
    (folder / "ADMISSIONS.csv").write_text(text)


@pytest.mark.parametrize(("damage", "expected"), [
    (_empty, "empty"), (_no_column, "missing column DOB"), (_missing_table, "no DIAGNOSES_ICD table"),
    (_bad_gzip, "not UTF-8"), (_fake_gzip, "cannot be read as CSV"), (_bad_date, "not a date-time"),
])
def test_bad_mimic3_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage, expected: str) -> None:
    folder = _copy_mimic3(tmp_path)
    damage(folder)
    capsys.readouterr()
    assert main(["data", "build", "seq2seq", str(folder), "--source", "mimic3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(("args", "expected"), [
    (["data", "build", "nope", "--out", "{tmp}/o"], "unknown task"),
    (["data", "build", "seq2seq", "{tmp}/missing", "--source", "mimic3", "--out", "{tmp}/o"], "not found"),
    (["data", "build", "seq2seq", "{fx}/mimic3_small", "--source", "oracle", "--out", "{tmp}/o"], "unknown --source"),
    (["data", "build", "seq2seq", "{fx}/mimic3_small", "--source", "mimic4", "--out", "{tmp}/o"], "missing column"),
    (["data", "build", "seq2seq", "{fx}/mimic4_small", "--source", "meds", "--out", "{tmp}/o"], "no .parquet"),
    (["data", "build", "seq2seq", "{fx}/meds_events.jsonl", "--source", "meds", "--out", "{tmp}/o"],
     "not a readable Parquet"),
    (["data", "build", "diagnosis", "{fx}/mimic3_small", "--source", "mimic3", "--out", "{tmp}/o"], "vignettes"),
    (["data", "build", "seq2seq", "{fx}/mimic3_small", "--source", "mimic3", "--code-style", "x", "--out", "{tmp}/o"],
     "--code-style"),
    (["data", "synth", "--patients", "0", "--out", "{tmp}/o"], "at least 1"),
])
def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str) -> None:
    argv = [a.format(tmp=tmp_path, fx=FIXTURES) for a in args]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_nothing_is_overwritten_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--patients", "50", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "PATIENTS.csv").read_bytes()
    assert main(["data", "synth", "--patients", "60", "--seed", "1", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err and (tmp_path / "PATIENTS.csv").read_bytes() == before
    assert main(["data", "build", "codes", str(tmp_path), "--out", str(tmp_path / "c")]) == 0
    assert main(["data", "build", "codes", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert main(["data", "build", "codes", str(tmp_path), "--out", str(tmp_path / "c"), "--force"]) == 0


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ehrdebug", "data", "build", "seq2seq", str(tmp_path / "none"),
                           "--source", "mimic3", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr and "Traceback" not in proc.stderr
