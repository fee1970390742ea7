"""Bad and huge inputs to `check tokenizer`: one clear line and exit 2, or a report that says it sampled."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.io.tables import ReadStats, read_texts

TINY = str(Path(__file__).parent / "fixtures" / "tok" / "tiny_bpe")
FIXTURE = Path(__file__).parent / "fixtures" / "tok" / "seq2seq_train.txt"
GB = 10**9


def _check(capsys: pytest.CaptureFixture[str], data: Path | str, *extra: str) -> tuple[int, str, str]:
    code = main(["check", "tokenizer", TINY, "--data", str(data), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ehrdebug: error:") and needle in lines[0], err


@pytest.mark.parametrize(
    ("make", "extra", "needle"),
    [
        (lambda p: p.write_text(""), (), "data file is empty"),
        (lambda p: p.write_bytes(b"56 ASIAN M <demo>\n\xff\xfe bad\n"), (), "not UTF-8 text (bad byte at offset 18)"),
        (lambda p: p.with_suffix(".csv").write_text("seq,label\na,1\n"), ("--field", "text"), "no column 'text' (columns: seq, label)"),
        (lambda p: None, (), "data file not found"),
        (lambda p: p.mkdir(), (), "expected a data file but got a directory"),
        (lambda p: p.write_text("x\n"), ("--code-systems", "icd99"), "unknown code system 'icd99'"),
        (lambda p: p.write_text("x\n"), ("--format", "yaml"), "unknown --format 'yaml'"),
        (lambda p: p.write_text("x\n"), ("--fail-on", "info"), "--fail-on must be warn or fail"),
        (lambda p: p.write_text("x\n"), ("--config", "/nonexistent/ehrdebug.toml"), "config file not found"),
    ],
)
def test_bad_inputs_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, extra, needle: str) -> None:
    path = tmp_path / "data.txt"
    make(path)
    if path.with_suffix(".csv").exists():
        path = path.with_suffix(".csv")
    code, _, err = _check(capsys, path, *extra)
    _one_line_error(code, err, needle)


def test_missing_tokenizer_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "tokenizer", str(tmp_path / "missing"), "--data", str(FIXTURE)])
    _one_line_error(code, capsys.readouterr().err, "tokenizer directory not found")
    code = main(["check", "tokenizer", str(tmp_path), "--data", str(FIXTURE)])
    _one_line_error(code, capsys.readouterr().err, "no tokenizer in")


def test_csv_jsonl_parquet_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    lines = FIXTURE.read_text().splitlines()[:50]
    frame = pd.DataFrame({"id": range(len(lines)), "sequence": lines})
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        code, out, _ = _check(capsys, tmp_path / name, "--field", "sequence", "--format", "json")
        report = json.loads(out)
        assert code == 1
        assert any(f["probe"] == "tokenizer.input" and f["evidence"]["texts"] == 50 for f in report["findings"])


def test_sparse_file_without_newline_is_refused_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hole.txt"
    with open(path, "wb") as fh:
        fh.truncate(5 * GB)
    start = time.perf_counter()
    code, _, err = _check(capsys, path)
    _one_line_error(code, err, "holds NUL bytes (offset 0): not a text data file")
    assert time.perf_counter() - start < 30


def test_several_gb_file_is_sampled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.txt"
    with open(path, "wb") as fh:
        fh.write(FIXTURE.read_bytes())
        fh.truncate(4 * GB)  # a zero-filled tail, as a half-written or pre-allocated file has
    code, out, _ = _check(capsys, path, "--format", "json")
    report = json.loads(out)
    assert code == 1
    read = next(f for f in report["findings"] if f["probe"] == "tokenizer.input")
    assert read["severity"] == "info" and read["evidence"]["texts"] == 240
    assert "stopped at NUL bytes" in read["title"] and "of 4.0 GB scanned" in read["title"]

    code, out, _ = _check(capsys, path, "--limit", "100")
    assert code == 1 and "sampled 100 texts" in out and "stopped at the record limit (100)" in out


def _one_line_file(tmp_path: Path) -> Path:
    path = tmp_path / "oneline.txt"
    with open(path, "wb") as fh:
        fh.write(b"56 ASIAN M <demo> <v> V3001 V053 <\\v> " * 80_000)  # ~3 MB of text, no newline
        fh.truncate(3 * GB)
    return path


def test_several_gb_single_line_is_cut(tmp_path: Path) -> None:
    stats = ReadStats()
    texts = read_texts(str(_one_line_file(tmp_path)), stats=stats)
    assert len(texts) == 1 and len(texts[0]) == 1 << 20 and stats.truncated_records == 1
    assert stats.bytes_read < 8 << 20 and "with no line break" in stats.stopped


@pytest.mark.slow
def test_several_gb_single_line_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 1 MiB sequence is tokenized for real (several seconds): the report says it was cut."""
    code, out, _ = _check(capsys, _one_line_file(tmp_path), "--max-length", "512")
    assert code == 1 and "sampled 1 texts" in out and "cut to 1024 KiB" in out


def test_output_file_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "report.xml"
    code, out, _ = _check(capsys, FIXTURE, "--format", "junit", "--output", str(target))
    assert code == 1 and out == "" and "<testsuite" in target.read_text()
    for fmt in ("github", "markdown"):
        code, out, _ = _check(capsys, FIXTURE, "--format", fmt)
        assert code == 1 and "tokenizer.structural" in out


def test_config_file_supplies_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "ehrdebug.toml"
    cfg.write_text('structural_tokens = ["<demo>"]\nmax_length = 20\nend_token = "<END>"\n')
    code, out, _ = _check(capsys, FIXTURE, "--config", str(cfg), "--format", "json")
    report = json.loads(out)
    tokens = [f["evidence"]["token"] for f in report["findings"] if f["probe"] == "tokenizer.structural"]
    assert tokens == ["<demo>"]
    lengths = next(f for f in report["findings"] if f["probe"] == "tokenizer.lengths")
    assert lengths["severity"] == "fail" and lengths["evidence"]["end_token_source"] == "configured"
    assert lengths["evidence"]["end_token_cut_off"] == lengths["evidence"]["truncated"] == 240
    # a flag wins over the file
    code, out, _ = _check(capsys, FIXTURE, "--config", str(cfg), "--max-length", "4096", "--format", "json")
    lengths = next(f for f in json.loads(out)["findings"] if f["probe"] == "tokenizer.lengths")
    assert lengths["severity"] == "ok" and lengths["evidence"]["max_length"] == 4096
    assert os.path.exists(cfg)
