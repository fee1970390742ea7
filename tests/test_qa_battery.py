"""Issue 15's battery of bad inputs for check data / check tokenizer / check collator / report / data / tui.

Each case runs the real console entry (``ehrdebug.cli.app.main``) in a workspace of small broken files and
asserts the exit code, exactly ONE stderr line (``ehrdebug: error: …``, no traceback) naming the problem,
and that every file of the workspace is byte-identical afterwards (sha256 before and after): a collision
of ``--output`` with an input, a report reading itself, an unwritable ``--output`` must change nothing.
``tui`` cases are all refused before the app starts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main

ROWS = [{"patient_id": i, "text": f"250.00 486 V3001 {i}", "label": i % 2} for i in range(12)]
REPORT = {"subject": "run", "findings": [{"probe": "a.b", "severity": "ok", "title": "fine"}], "meta": {}}
TS = {"global_step": 4, "max_steps": 4, "log_history": [{"step": s, "loss": 2.0 / s} for s in range(1, 5)]}


def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "250.00": 1, "486": 2, "V3001": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok.to_str()


def _workspace(root: Path) -> None:
    def write(name: str, content: str | bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    ok = "".join(json.dumps(r) + "\n" for r in ROWS)
    write("ok.jsonl", ok)
    write("val.jsonl", ok)
    write("args.json", json.dumps({"per_device_train_batch_size": 2}))
    write("data.txt", "250.00 486\nV3001 486\n")
    write("empty.txt", "")
    write("empty.csv", "")
    write("nul.txt", b"\x00\x01\x02" * 50)
    write("latin1.csv", "text\ncaf\xe9\n".encode("latin-1"))
    write("tok/tokenizer.json", _tokenizer_json())
    write("tok/data.txt", "250.00 486\n")
    write("tok_badjson/tokenizer.json", "{bad")
    write("tok_empty/tokenizer.json", "")
    write("tok_bin/tokenizer.json", bytes(range(256)) * 4)
    write("tok_list/tokenizer.json", "[1, 2, 3]")
    write("tok_spiece/spiece.model", b"\x00garbage" * 20)
    write("tok_vocab/vocab.json", '{"a": 0}')
    (root / "tok_none").mkdir()
    write("run_rep/run.json", json.dumps({"format_version": 1, "config": {}}))
    write("run_rep/events.jsonl", '{"t":1,"step":1,"kind":"train","loss":1.0}\n')
    write("run_rep/artifacts/doctor/report.json", json.dumps(REPORT))
    write("report.json", json.dumps(REPORT))
    write("report_empty.json", "")
    write("report_list.json", "[1]")
    write("report_latin1.json", b"\xff\xfe{")
    write("report_nofindings.json", '{"subject": "x"}')
    write("ev_dir/run.json", json.dumps({"format_version": 1}))
    (root / "ev_dir" / "events.jsonl").mkdir()
    (root / "runjson_dir" / "run.json").mkdir(parents=True)
    write("ev_bin/events.jsonl", bytes(range(1, 256)) * 8 + b"\n" + b"\x9c{]garbage\n" * 20)
    write("ev_torn/run.json", json.dumps({"format_version": 1}))
    write("ev_torn/events.jsonl", '{"t":1,"step":"abc","kind":"train","loss":1.0}\n{"t":1,"ste')
    write("hf_ok/trainer_state.json", json.dumps(TS))


OVERWRITE = "would overwrite the input"
UNWRITABLE = "cannot write --output"
# (argv, exit code, fragment of the one stderr line)
CASES: list[tuple[list[str], int, str]] = [
    # nothing overwritten: --output colliding with an input, a report reading itself, an unwritable place
    (["check", "tokenizer", "tok", "--data", "tok/data.txt", "--output", "tok/tokenizer.json"], 2, OVERWRITE),
    (["check", "tokenizer", "tok", "--data", "tok/data.txt", "--output", "tok/data.txt"], 2, OVERWRITE),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--output", "data.txt"], 2, OVERWRITE),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--output", "empty.csv/r.md"], 2, "a folder in its path is a file"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--output", "/proc/ehrdebug-nope/r.md"], 2, UNWRITABLE),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--output", "tok"], 2, "is a directory"),
    (["check", "data", "--train", "ok.jsonl", "--output", "ok.jsonl"], 2, OVERWRITE),
    (["check", "data", "--train", "ok.jsonl", "--validation", "val.jsonl", "--output", "val.jsonl"], 2, OVERWRITE),
    (["check", "data", "--train", "ok.jsonl", "--test", "val.jsonl", "--output", "val.jsonl"], 2, OVERWRITE),
    (["check", "data", "--train", "ok.jsonl", "--training-args", "args.json", "--output", "args.json"], 2, OVERWRITE),
    (["check", "data", "--train", "ok.jsonl", "--output", "/proc/ehrdebug-nope/r.md"], 2, UNWRITABLE),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tok", "--output", "ok.jsonl", "--model-type", "causal"], 2, OVERWRITE),
    (["report", "run_rep", "--output", "run_rep/artifacts/doctor/report.json"], 2, OVERWRITE),
    (["report", "run_rep/artifacts/doctor/report.json", "--output", "run_rep/artifacts/doctor/report.json"], 2, OVERWRITE),
    (["report", "report.json", "--output", "report.json"], 2, OVERWRITE),
    (["report", "report.json", "--output", "./tok/../report.json"], 2, OVERWRITE),
    (["report", "run_rep", "--output", "run_rep/events.jsonl"], 2, OVERWRITE),
    (["report", "run_rep", "--output", "run_rep/run.json"], 2, OVERWRITE),
    (["report", "run_rep", "--output", "run_rep/run.json/r.md"], 2, "a folder in its path is a file"),
    (["report", "run_rep", "--output", "/proc/ehrdebug-nope/r.md"], 2, UNWRITABLE),
    (["report", "run_rep", "--output", "run_rep"], 2, "is a directory"),
    (["doctor", "hf_ok", "--output", "hf_ok/trainer_state.json/r.md"], 2, "a folder in its path is a file"),
    (["doctor", "hf_ok", "--output", "/proc/ehrdebug-nope/r.md"], 2, UNWRITABLE),
    # numbers that are NaN, infinite or out of range
    (["check", "data", "--train", "ok.jsonl", "--epochs", "nan"], 2, "--epochs must be a finite number"),
    (["check", "data", "--train", "ok.jsonl", "--epochs", "inf"], 2, "--epochs must be a finite number"),
    (["check", "data", "--train", "ok.jsonl", "--epochs", "-inf"], 2, "--epochs must be a finite number"),
    (["check", "data", "--train", "ok.jsonl", "--epochs", "0"], 2, "--epochs must be positive"),
    (["check", "data", "--train", "ok.jsonl", "--epochs", "-2"], 2, "--epochs must be positive"),
    (["check", "data", "--train", "ok.jsonl", "--grad-accum", "0"], 2, "--grad-accum must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--devices", "0"], 2, "--devices must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--per-device-batch", "-3"], 2, "--per-device-batch must be at least 1"),
    (["check", "data", "--train", "ok.jsonl", "--max-steps", "-5"], 2, "--max-steps must be at least -1"),
    (["check", "data", "--train", "ok.jsonl", "--epochs", "abc"], 2, "Invalid value for '--epochs'"),
    (["data", "synth", "--out", "o", "--patients", "99999999999999999999"], 2, "--patients must be at most 10,000,000"),
    (["data", "synth", "--out", "o", "--patients", "-1"], 2, "--patients must be at least 1"),
    (["data", "build", "seq2seq", "--out", "o", "--patients", "99999999999999999999"], 2, "--patients must be at most"),
    (["data", "build", "seq2seq", "--out", "o", "--max-codes", "0"], 2, "--max-codes must be at least 1"),
    (["data", "build", "seq2seq", "--out", "o", "--max-visits", "-1"], 2, "--max-visits must be at least 1"),
    (["tui", "hf_ok", "--interval", "nan"], 2, "--interval must be a finite number"),
    (["tui", "hf_ok", "--interval", "inf"], 2, "--interval must be a finite number"),
    (["tui", "hf_ok", "--interval", "-1"], 2, "--interval must be positive"),
    (["tui", "hf_ok", "--interval", "abc"], 2, "Invalid value for '--interval'"),
    # corrupt or misplaced run logs
    (["tui", "ev_dir"], 2, "events.jsonl is not a file"),
    (["tui", "runjson_dir"], 2, "run.json is not a file"),
    (["report", "ev_dir"], 2, "events.jsonl is not a file"),
    (["report", "runjson_dir"], 2, "run.json is not a file"),
    (["tui", "ev_bin"], 2, "is not an ehrdebug event log"),
    (["report", "ev_torn"], 2, "no saved report for ev_torn"),
    (["report", "report_empty.json"], 2, "cannot read report_empty.json"),
    (["report", "report_list.json"], 2, "is not an ehrdebug report"),
    (["report", "report_latin1.json"], 2, "cannot read report_latin1.json"),
    (["report", "report_nofindings.json"], 2, "is not an ehrdebug report"),
    (["report", "missing"], 2, "path not found: missing"),
    # corrupt tokenizers and their data
    (["check", "tokenizer", "tok_badjson", "--data", "data.txt"], 2, "tok_badjson"),
    (["check", "tokenizer", "tok_empty", "--data", "data.txt"], 2, "tok_empty"),
    (["check", "tokenizer", "tok_bin", "--data", "data.txt"], 2, "tok_bin"),
    (["check", "tokenizer", "tok_list", "--data", "data.txt"], 2, "tok_list"),
    (["check", "tokenizer", "tok_spiece", "--data", "data.txt"], 2, "tok_spiece"),
    (["check", "tokenizer", "tok_vocab", "--data", "data.txt"], 2, "tok_vocab"),
    (["check", "tokenizer", "tok_none", "--data", "data.txt"], 2, "tok_none"),
    (["check", "tokenizer", "tok", "--data", "missing.txt"], 2, "data file not found: missing.txt"),
    (["check", "tokenizer", "tok", "--data", "empty.txt"], 2, "empty"),
    (["check", "tokenizer", "tok", "--data", "nul.txt"], 2, "NUL bytes"),
    (["check", "tokenizer", "tok", "--data", "latin1.csv"], 2, "not UTF-8"),
    (["check", "tokenizer", "tok", "--data", "tok_none"], 2, "tok_none"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--max-length", "0"], 2, "--max-length must be at least 1"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--limit", "0"], 2, "--limit must be at least 1"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--format", "yaml"], 2, "unknown --format 'yaml'"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--fail-on", "ok"], 2, "--fail-on must be warn or fail"),
    (["check", "tokenizer", "tok", "--data", "data.txt", "--code-systems", "icd99"], 2, "icd99"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tok_badjson", "--model-type", "causal"], 2, "tok_badjson"),
    (["check", "collator", "--data", "ok.jsonl", "--tokenizer", "tok_none", "--model-type", "causal"], 2, "tok_none"),
    (["check", "collator", "--data", "empty.csv", "--tokenizer", "tok", "--model-type", "causal"], 2, "empty"),
]


def _id(case: tuple) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", " ".join(case[0])).strip("-")[:80]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("battery")
    _workspace(root)
    return root


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_one_line_right_code_and_changes_nothing(case: tuple, workspace: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv, code, fragment = case
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(workspace)
    before = _hashes(workspace)
    assert main(list(argv)) == code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ehrdebug: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _hashes(workspace) == before  # every input byte-identical, nothing added
    assert not (workspace / "o").exists()


def test_battery_size() -> None:
    assert len(CASES) >= 70
