"""Seed 000 acceptance: the real GPT-2/BART byte-level BPE splits <demo> and ICD-9 codes; registering fixes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ehrdebug.cli.app import main

FIXTURE = Path(__file__).parent / "fixtures" / "tok" / "seq2seq_train.txt"
STRUCTURAL = r"<demo>,<v>,<\v>,<END>"


def _json_report(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict]:
    code = main(args + ["--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_gpt2_splits_demo_and_codes_exit_1(real_tokenizers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", "tokenizer", str(real_tokenizers / "gpt2_bpe"), "--data", str(FIXTURE), "--structural-tokens", STRUCTURAL]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 1
    assert "'<demo>' is split into 4 pieces: ['Ġ<', 'dem', 'o', '>']" in out
    assert "V3001 → ['ĠV', '300', '1'] (3 pieces" in out

    code, report = _json_report(capsys, args)
    assert code == 1
    structural = [f for f in report["findings"] if f["probe"] == "tokenizer.structural"]
    demo = next(f for f in structural if "'<demo>'" in f["title"])
    assert demo["severity"] == "fail"
    assert demo["evidence"]["pieces after a space"] == ["Ġ<", "dem", "o", ">"]
    assert demo["evidence"]["pieces alone"] == ["<", "dem", "o", ">"]
    assert "register-structural-tokens" in demo["recipes"]
    assert {f["severity"] for f in structural} == {"fail"} and len(structural) == 4
    codes = {f["title"].split()[0]: f for f in report["findings"] if f["probe"] == "tokenizer.codes" and "codes" in f["title"].split()[1:2]}
    nodot = codes["icd9_nodot"]["evidence"]
    assert nodot["mean_pieces_per_code"] > 2 and nodot["single_token_share"] == 0
    assert codes["icd9"]["examples"][0].startswith("250.00 → ['Ġ250', '.', '00']")
    top = next(f for f in report["findings"] if f["title"].startswith("adding the top"))
    assert top["evidence"]["mean_length_after"] < top["evidence"]["mean_length_before"]
    assert top["evidence"]["coverage_of_code_occurrences"] == 1


def test_gpt2_with_registered_tokens_passes(real_tokenizers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained(str(real_tokenizers / "gpt2_bpe"))
    tok.add_special_tokens({"additional_special_tokens": ["<demo>", "<v>", "<\\v>", "<END>"]})
    tok.save_pretrained(str(tmp_path / "fixed"))
    args = ["check", "tokenizer", str(tmp_path / "fixed"), "--data", str(FIXTURE), "--structural-tokens", STRUCTURAL]
    code, report = _json_report(capsys, args)
    structural = [f for f in report["findings"] if f["probe"] == "tokenizer.structural"]
    assert [f["severity"] for f in structural] == ["ok"]
    assert set(structural[0]["evidence"]["tokens"]) == {"<demo>", "<v>", "<\\v>", "<END>"}
    assert "special=True" in structural[0]["evidence"]["tokens"]["<demo>"]
    assert code == 0  # codes are only a warning; nothing fails
    assert main(args + ["--fail-on", "warn"]) == 1  # ... and the warning gates when asked
    capsys.readouterr()


def test_shipped_sample_data_if_present(real_tokenizers: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = sample_data / "ehr" / "seq2seq" / "train.txt"
    if not train.is_file():
        pytest.skip("sample_data/ehr/seq2seq/train.txt not built yet")
    code, report = _json_report(capsys, ["check", "tokenizer", str(real_tokenizers / "gpt2_bpe"), "--data", str(train),
                                         "--structural-tokens", STRUCTURAL])
    assert code == 1
    demo = next(f for f in report["findings"] if "'<demo>'" in f["title"])
    assert demo["evidence"]["pieces after a space"] == ["Ġ<", "dem", "o", ">"]


def test_structural_tokens_found_in_data_when_not_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = Path(__file__).parent / "fixtures" / "tok" / "tiny_bpe"
    shutil.copytree(tiny, tmp_path / "tok")
    code, report = _json_report(capsys, ["check", "tokenizer", str(tmp_path / "tok"), "--data", str(FIXTURE)])
    assert code == 1
    split = {f["evidence"]["token"] for f in report["findings"] if f["probe"] == "tokenizer.structural"}
    assert split == {"<demo>", "<v>", "<\\v>", "<END>"}
