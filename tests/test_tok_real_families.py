"""Each real tokenizer family gets its own, correct report: evidence, not labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.io.tables import read_texts
from ehrdebug.tokenizers import load_tokenizer
from probes.tokenizer_suite import run_tokenizer_probes

FIXTURE = Path(__file__).parent / "fixtures" / "tok" / "seq2seq_train.txt"
CFG = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"])


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return read_texts(str(FIXTURE))


def _run(path: Path, texts: list[str]) -> list[Finding]:
    return run_tokenizer_probes(load_tokenizer(str(path)), texts, CFG)


def _one(findings: list[Finding], probe: str, starts: str = "") -> Finding:
    hits = [f for f in findings if f.probe == probe and f.title.startswith(starts)]
    assert hits, [f.title for f in findings]
    return hits[0]


def _code_finding(findings: list[Finding], system: str) -> Finding:
    return _one(findings, "tokenizer.codes", f"{system} codes")


def test_t5_maps_angle_bracket_to_unk(real_tokenizers: Path, texts: list[str]) -> None:
    findings = _run(real_tokenizers / "t5_spiece", texts)
    demo = next(f for f in findings if f.evidence.get("token") == "<demo>")
    assert demo.severity == Severity.FAIL
    assert demo.evidence["maps_to_unknown"] == ["<"]
    assert "<unk>" in demo.evidence["pieces after a space"]
    unk = next(f for f in findings if f.probe == "tokenizer.codes" and "unknown_rate" in f.evidence)
    assert unk.severity == Severity.FAIL and unk.evidence["unknown_text"]["<"] > 0
    rt = _one(findings, "tokenizer.roundtrip")
    assert rt.severity == Severity.FAIL and "unknown token" in rt.evidence["failures_by_cause"]
    assert any("'<demo>' → '<unk>demo>'" in w for w in rt.evidence["words_changed"])


def test_llama_splits_codes_digit_by_digit(real_tokenizers: Path, texts: list[str]) -> None:
    findings = _run(real_tokenizers / "llama2", texts)
    nodot = _code_finding(findings, "icd9_nodot")
    assert nodot.severity == Severity.WARN
    assert any(e.startswith("V3001 → ['▁V', '3', '0', '0', '1'] (5 pieces") for e in nodot.examples)
    assert nodot.evidence["mean_pieces_per_code"] > 4
    assert _code_finding(findings, "icd9").examples[0].startswith("250.00 → ['2', '5', '0', '.', '0', '0'] (6 pieces")
    top = _one(findings, "tokenizer.codes", "adding the top")
    assert top.evidence["length_change"] < -0.2  # whole codes shorten LLaMA sequences by a lot
    assert _one(findings, "tokenizer.roundtrip").severity == Severity.OK
    assert not any("unknown_rate" in f.evidence for f in findings)  # byte fallback: no <unk>


def test_bert_uncased_lowercases_codes(real_tokenizers: Path, texts: list[str]) -> None:
    tok = load_tokenizer(str(real_tokenizers / "bert_base_uncased"))
    assert tok.lowercases and tok.family == "WordPiece"
    findings = run_tokenizer_probes(tok, texts, CFG)
    rt = _one(findings, "tokenizer.roundtrip")
    assert rt.severity == Severity.WARN and rt.evidence["lowercases"] is True
    assert "lower-cased" in rt.evidence["failures_by_cause"]
    assert rt.evidence["words_changed"][0].startswith("'V3001' → 'v3001'")
    end = next(f for f in findings if f.evidence.get("token") == "<END>")
    assert end.evidence["normalised_to"] == "<end>" and end.evidence["pieces alone"] == ["<", "end", ">"]
    assert any(e.startswith("V3001 → ['v', '##30', '##01']") for e in _code_finding(findings, "icd9_nodot").examples)


def test_bert_cased_detected_from_vocab(real_tokenizers: Path, texts: list[str]) -> None:
    tok = load_tokenizer(str(real_tokenizers / "bert_base_cased"))
    assert not tok.lowercases and "do_lower_case=False" in tok.source
    findings = run_tokenizer_probes(tok, texts, CFG)
    rt = _one(findings, "tokenizer.roundtrip")
    assert "lower-cased" not in rt.evidence["failures_by_cause"]
    assert rt.evidence["failures_by_cause"].get("spacing")  # WordPiece re-spaces '<demo>' as '< demo >'
    assert any(e.startswith("V3001 → ['V', '##30', '##01']") for e in _code_finding(findings, "icd9_nodot").examples)


def test_reports_are_distinct(real_tokenizers: Path, texts: list[str]) -> None:
    titles = {}
    for name in ("gpt2_bpe", "t5_spiece", "llama2", "bert_base_uncased"):
        findings = _run(real_tokenizers / name, texts)
        titles[name] = tuple(sorted(f.title for f in findings))
    assert len(set(titles.values())) == 4
