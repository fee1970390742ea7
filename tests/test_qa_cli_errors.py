"""Every error a user can cause, through the real console entry: one stderr line, the right exit code.

The table drives ``ehrdebug.cli.app.main`` (what the ``ehrdebug`` script runs) over the finished
commands (data, check data/collator, doctor, report, tui argument handling) with missing paths, files
where folders belong and the reverse, empty / non-UTF-8 / fake-gzip / garbage files, broken run
directories, unknown option values and bad ``ehrdebug.toml`` settings. Each case names a fragment of
the one line it must print. A bug (an exception that is no user's fault) is one line and exit 3.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ehrdebug.cli.app import INTERNAL_ERROR, main

TS = {"global_step": 4, "max_steps": 4, "log_history": [{"step": s, "loss": 2.0 / s} for s in range(1, 5)]}


def _workspace(root: Path) -> None:
    """Small bad inputs, named for what is wrong with them (paths in the table are relative to ``root``)."""
    def write(name: str, content: str | bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    rows = [{"patient_id": i, "text": f"250.00 486 V3001 {i}", "label": i % 2} for i in range(12)]
    write("ok.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write("empty.csv", "")
    write("empty.jsonl", "")
    write("wrongcols.csv", "a,b\n1,2\n")
    write("broken.jsonl", '{"text": "a"}\n{"text": \n{"text": "c"}\n')
    write("latin1.csv", "text\ncaf\xe9\n".encode("latin-1"))
    write("fake.csv.gz", "text\nhello\n")
    write("nul.txt", b"\x00\x01\x02" * 50)
    write("bad.json", "{bad")
    write("notreport.json", '{"findings": [{"x": 1}]}')
    write("args_str.json", '{"per_device_train_batch_size": "eight"}')
    write("args_zero.json", '{"per_device_train_batch_size": 0}')
    write("training_args.bin", b"\x80\x04\x95\xad\x0b\x00\x00pickle")
    (root / "notrun").mkdir()
    write("notrun/x.txt", "x")
    (root / "tokdir").mkdir()
    write("hf_badjson/trainer_state.json", "{not json")
    write("hf_list/checkpoint-5/trainer_state.json", "[1, 2]")
    write("hf_latin1/trainer_state.json", b"\xff\xfe garbage")
    write("hf_ok/trainer_state.json", json.dumps(TS))
    write("ev_garbage/events.jsonl", bytes(range(1, 256)) * 8 + b"\n" + b"\x9c{]garbage\n" * 20)
    write("run_badjson/run.json", "{nope")
    write("run_list/run.json", "[1, 2, 3]")
    write("ckpt_badjson/config.json", "{broken")
    write("m3_fakegz/PATIENTS.csv.gz", "SUBJECT_ID,GENDER,DOB\n1,M,2100-01-01\n")
    write("m3_fakegz/ADMISSIONS.csv", "SUBJECT_ID,HADM_ID,ADMITTIME,DISCHTIME,ETHNICITY\n")
    write("m3_fakegz/DIAGNOSES_ICD.csv", "SUBJECT_ID,HADM_ID,SEQ_NUM,ICD9_CODE\n")
    write("mine/train.jsonl", "MINE\n")
    write("mine_synth/PATIENTS.csv", "MINE\n")
    for name, toml in {"cfg_key": "max_lenght = 5\n", "cfg_syntax": "max_length = \n",
                       "cfg_type": 'max_length = "abc"\n', "cfg_thr_table": "thresholds = 5\n",
                       "cfg_thr_value": '[thresholds]\nminority_share = "x"\n', "cfg_label": "label_field = 5\n",
                       "cfg_regex": '[custom_code_systems]\nmine = "(["\n', "cfg_system": 'code_systems = ["icd99"]\n'}.items():
        write(f"{name}/ehrdebug.toml", toml)
        write(f"{name}/ok.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        write(f"{name}/run/trainer_state.json", json.dumps(TS))
    write("cfg_latin1/ehrdebug.toml", "# caf\xe9\nmax_length = 5\n".encode("latin-1"))
    write("cfg_latin1/ok.jsonl", json.dumps(rows[0]) + "\n")


# (argv, exit code, fragment of the one stderr line[, cwd inside the workspace])
CASES: list[tuple[list[str], int, str] | tuple[list[str], int, str, str]] = [
    # ehrdebug data synth / build
    (["data", "synth"], 2, "Missing option '--out'"),
    (["data", "synth", "--out", "empty.csv"], 2, "is a file"),
    (["data", "synth", "--out", "o", "--patients", "0"], 2, "--patients must be at least 1"),
    (["data", "synth", "--out", "o", "--patients", "abc"], 2, "Invalid value for '--patients'"),
    (["data", "synth", "--out", "mine_synth", "--patients", "3"], 2, "pass --force"),
    (["data", "synth", "--out", "empty.csv/sub", "--patients", "3"], 2, "Not a directory"),
    (["data", "build", "nope", "--out", "o"], 2, "unknown task 'nope'"),
    (["data", "build", "seq2seq", "--out", "empty.csv"], 2, "is a file"),
    (["data", "build", "seq2seq", "--out", "o", "--patients", "0"], 2, "--patients must be at least 1"),
    (["data", "build", "seq2seq", "--source", "mimic3", "--out", "o"], 2, "needs a PATH"),
    (["data", "build", "seq2seq", "missing", "--source", "mimic3", "--out", "o"], 2, "not found: missing"),
    (["data", "build", "seq2seq", "empty.csv", "--source", "mimic3", "--out", "o"], 2, "got a file"),
    (["data", "build", "seq2seq", "notrun", "--source", "mimic3", "--out", "o"], 2, "no PATIENTS table"),
    (["data", "build", "seq2seq", "notrun", "--source", "meds", "--out", "o"], 2, "no .parquet files"),
    (["data", "build", "seq2seq", "nul.txt", "--source", "meds", "--out", "o"], 2, "not a readable Parquet file"),
    (["data", "build", "seq2seq", "m3_fakegz", "--source", "mimic3", "--out", "o"], 2, "PATIENTS.csv.gz: cannot be read as CSV"),
    (["data", "build", "seq2seq", "notrun", "--source", "nope", "--out", "o"], 2, "unknown --source 'nope'"),
    (["data", "build", "seq2seq", "--code-style", "zz", "--out", "o"], 2, "unknown --code-style"),
    (["data", "build", "seq2seq", "--max-visits", "0", "--out", "o"], 2, "at least 1"),
    (["data", "build", "diagnosis", "notrun", "--out", "o"], 2, "hand-written vignettes"),
    (["data", "build", "diagnosis", "--out", "mine"], 2, "already has train.jsonl; pass --force"),
    # ehrdebug check data
    (["check", "data"], 2, "Missing option '--train'"),
    (["check", "data", "--train", "missing.csv"], 2, "data file not found: missing.csv"),
    (["check", "data", "--train", "notrun"], 2, "got a directory: notrun"),
    (["check", "data", "--train", "empty.csv"], 2, "data file is empty"),
    (["check", "data", "--train", "empty.jsonl"], 2, "data file is empty"),
    (["check", "data", "--train", "wrongcols.csv", "--patient-field", "patient_id"], 2, "patient field 'patient_id'"),
    (["check", "data", "--train", "broken.jsonl"], 2, "broken.jsonl:2: not valid JSON Lines"),
    (["check", "data", "--train", "latin1.csv"], 2, "latin1.csv is not UTF-8"),
    (["check", "data", "--train", "fake.csv.gz"], 2, "fake.csv.gz: cannot be read as CSV"),
    (["check", "data", "--train", "nul.txt"], 2, "NUL bytes"),
    (["check", "data", "--train", "ok.jsonl", "--validation", "broken.jsonl"], 2, "not valid JSON Lines"),
    (["check", "data", "--train", "ok.jsonl", "--format", "yaml"], 2, "unknown --format 'yaml'"),
    (["check", "data", "--train", "ok.jsonl", "--fail-on", "nope"], 2, "unknown severity 'nope'"),
    (["check", "data", "--train", "ok.jsonl", "--fail-on", "ok"], 2, "--fail-on must be warn or fail"),
    (["check", "data", "--train", "ok.jsonl", "--label-field", "nope"], 2, "label field 'nope'"),
    (["check", "data", "--train", "ok.jsonl", "--limit", "0"], 2, "--limit must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--per-device-batch", "0"], 2, "must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "missing.json"], 2, "training-args file not found"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "bad.json"], 2, "not a JSON file of training arguments"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "args_str.json"], 2,
     "per_device_train_batch_size must be a whole number, got 'eight'"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "args_zero.json"], 2, "must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "training_args.bin"], 2, "training_args.bin is a pickle"),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "notrun"], 2, "neither run.json nor training_args.json"),
    (["check", "data", "--train", "ok.jsonl", "--config", "missing.toml"], 2, "config file not found"),
    (["check", "data", "--train", "ok.jsonl", "--config", "bad.json"], 2, "cannot read bad.json"),
    (["check", "data", "--train", "ok.jsonl", "--output", "notrun"], 2, "--output notrun is a directory"),
    (["check", "data", "--train", "ok.jsonl", "--output", "empty.csv/r.txt"], 2, "a folder in its path is a file"),
    # a bad ehrdebug.toml in the current directory
    (["check", "data", "--train", "ok.jsonl"], 2, "unknown key 'max_lenght'", "cfg_key"),
    (["check", "data", "--train", "ok.jsonl"], 2, "Invalid value (at line 1", "cfg_syntax"),
    (["check", "data", "--train", "ok.jsonl"], 2, "max_length in", "cfg_type"),
    (["check", "data", "--train", "ok.jsonl"], 2, "thresholds in", "cfg_thr_table"),
    (["check", "data", "--train", "ok.jsonl"], 2, "threshold 'minority_share'", "cfg_thr_value"),
    (["check", "data", "--train", "ok.jsonl"], 2, "label_field in", "cfg_label"),
    (["check", "data", "--train", "ok.jsonl"], 2, "custom_code_systems.mine", "cfg_regex"),
    (["check", "data", "--train", "ok.jsonl"], 2, "unknown code system 'icd99'", "cfg_system"),
    (["check", "data", "--train", "ok.jsonl"], 2, "not UTF-8 text", "cfg_latin1"),
    (["doctor", "run"], 2, "unknown key 'max_lenght'", "cfg_key"),
    (["doctor", "run"], 2, "threshold 'minority_share'", "cfg_thr_value"),
    # ehrdebug check collator (all refused before a tokenizer is loaded, but one)
    (["check", "collator"], 2, "Missing option '--data'"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tokdir", "--model-type", "gpt"], 2, "--model-type must be one of"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tokdir", "--model-type", "seq2seq", "--padding", "x"], 2,
     "--padding must be"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tokdir", "--model-type", "seq2seq", "--batch-size", "0"], 2,
     "at least 1"),
    (["check", "collator", "--data", "missing.jsonl", "--tokenizer", "tokdir", "--model-type", "seq2seq"], 2,
     "data file not found"),
    (["check", "collator", "--data", "notrun", "--tokenizer", "tokdir", "--model-type", "seq2seq"], 2, "got a directory"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "ok.jsonl", "--model-type", "seq2seq"], 2,
     "expected a tokenizer directory but got a file"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "./missing_tok", "--model-type", "seq2seq"], 2,
     "tokenizer directory not found"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tokdir", "--model-type", "seq2seq"], 2,
     "no tokenizer in tokdir (expected tokenizer.json, vocab.json+merges.txt"),
    # ehrdebug doctor
    (["doctor"], 2, "Missing argument"),
    (["doctor", "missing"], 2, "path not found: missing"),
    (["doctor", "empty.csv"], 2, "got a file: empty.csv"),
    (["doctor", "notrun"], 2, "notrun is not a run"),
    (["doctor", "hf_badjson"], 2, "cannot read hf_badjson/trainer_state.json"),
    (["doctor", "hf_list"], 2, "is not a trainer_state.json"),
    (["doctor", "hf_latin1"], 2, "cannot read hf_latin1/trainer_state.json"),
    (["doctor", "ev_garbage"], 2, "is not an ehrdebug event log"),
    (["doctor", "run_badjson"], 2, "cannot read run_badjson/run.json"),
    (["doctor", "run_list"], 2, "is not a run.json"),
    (["doctor", "ckpt_badjson"], 2, "cannot read ckpt_badjson/config.json"),
    (["doctor", "hf_ok", "--format", "yaml"], 2, "unknown --format"),
    (["doctor", "hf_ok", "--fail-on", "info"], 2, "--fail-on must be warn or fail"),
    (["doctor", "hf_ok", "--data", "missing.jsonl"], 2, "data file not found"),
    (["doctor", "hf_ok", "--data", "broken.jsonl"], 2, "not valid JSON Lines"),
    (["doctor", "hf_ok", "--data", "latin1.csv"], 2, "is not UTF-8"),
    (["doctor", "hf_ok", "--data", "fake.csv.gz"], 2, "cannot be read as CSV"),
    (["doctor", "hf_ok", "--config", "missing.toml"], 2, "config file not found"),
    (["doctor", "hf_ok", "--output", "notrun"], 2, "--output notrun is a directory"),
    # ehrdebug report
    (["report"], 2, "Missing argument"),
    (["report", "missing"], 2, "path not found"),
    (["report", "notrun"], 2, "no saved report for notrun"),
    (["report", "hf_ok"], 2, "no saved report"),
    (["report", "empty.csv"], 2, "cannot read empty.csv"),
    (["report", "bad.json"], 2, "cannot read bad.json"),
    (["report", "latin1.csv"], 2, "cannot read latin1.csv"),
    (["report", "notreport.json"], 2, "not an ehrdebug report"),
    (["report", "run_list"], 2, "no saved report"),
    # ehrdebug tui PATH (argument handling only: every case is refused before the app starts)
    (["tui", "missing"], 2, "path not found"),
    (["tui", "empty.csv"], 2, "got a file"),
    (["tui", ".", "--interval", "0"], 2, "--interval must be positive"),
    # the shell itself
    (["no-such-command"], 2, "No such command"),
    (["doctor", "hf_ok", "--no-such-option"], 2, "No such option"),
]


def _id(case: tuple) -> str:
    import re

    words = " ".join([*case[0][:2], *case[3:], case[2]])
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", words).strip("-")[:70]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_user_error_is_one_line_and_exit_code(case: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv, code, fragment, *cwd = case
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _workspace(tmp_path)
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path / (cwd[0] if cwd else "."))
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ehrdebug: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in captured.err + captured.out
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing the user had changed


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_bug_is_one_line_exit_3_and_debug_shows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """An internal error is not dressed up as the user's mistake (exit 2) nor hidden in a traceback."""
    import probes.data_suite

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(probes.data_suite, "run_data_probes", broken)
    _workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "data", "--train", "ok.jsonl"]) == INTERNAL_ERROR == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "internal error: RuntimeError: kaboom second line" in err and "--debug" in err and "bug" in err
    with pytest.raises(RuntimeError, match="kaboom"):
        main(["--debug", "check", "data", "--train", "ok.jsonl"])
    assert main(["check", "data", "--train", "ok.jsonl"]) == 3  # --debug does not stick to the next call
    capsys.readouterr()


def test_debug_after_the_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``--debug`` belongs before the command; given after it, the usage error is still one line."""
    assert main(["doctor", "/nonexistent", "--debug"]) == 2
    err = capsys.readouterr().err
    assert err == "ehrdebug: error: No such option: --debug\n"


def test_multi_line_user_error_is_folded_into_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ehrdebug.errors import UserError

    def multi(*args: object, **kwargs: object) -> None:
        raise UserError("first\n  second\n")

    import probes.data_suite

    monkeypatch.setattr(probes.data_suite, "run_data_probes", multi)
    _workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "data", "--train", "ok.jsonl"]) == 2
    assert capsys.readouterr().err == "ehrdebug: error: first second\n"


def test_os_errors_name_the_path_without_errno(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    assert main(["data", "synth", "--patients", "2", "--out", str(tmp_path / "afile" / "sub")]) == 2
    err = capsys.readouterr().err
    assert err == f"ehrdebug: error: {tmp_path / 'afile' / 'sub'}: Not a directory\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for a read-only folder")
def test_read_only_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "ok.jsonl").write_text('{"text": "a"}\n')
    ro.chmod(0o500)
    try:
        assert main(["check", "data", "--train", str(tmp_path / "ok.jsonl"), "--output", str(ro / "r.txt")]) == 2
        assert main(["data", "synth", "--patients", "2", "--out", str(ro)]) == 2
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("Permission denied" in line for line in err)
