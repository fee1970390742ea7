"""The tokenizer probes on word-level EHR code vocabularies: in the vocabulary or [UNK], never "fragmented"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from ehrdebug.codetok import UNK_ID, build_code_tokenizer, encode_record, record_text, summarize
from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from ehrdebug.recipe_ids import ALL
from ehrdebug.tokenizers import as_handle, load_tokenizer
from probes.tokenizer_suite import run_tokenizer_probes

SHIPPED = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


def _records(split: str) -> list[dict]:
    return [
        json.loads(line) for line in (SHIPPED / f"{split}.jsonl").read_text().splitlines() if line.strip()
    ]


@pytest.fixture(scope="module")
def train() -> list[dict]:
    return _records("train")


@pytest.fixture(scope="module")
def test_texts() -> list[str]:
    return [record_text(r) for r in _records("test")]


def _by_probe(findings, probe):
    return [f for f in findings if f.probe == probe]


def test_a_full_code_vocabulary_gets_a_clean_report(tmp_path, train):
    tok = build_code_tokenizer(train)
    tok.save_pretrained(tmp_path)
    texts = [record_text(r) for r in train]
    findings = run_tokenizer_probes(load_tokenizer(str(tmp_path)), texts, EhrDebugConfig())
    assert all(f.severity == Severity.OK for f in findings), [
        (f.probe, f.title) for f in findings if f.severity > Severity.OK
    ]
    structural = _by_probe(findings, "tokenizer.structural")
    assert "[VS]" in structural[0].evidence["tokens"] and "are in the vocabulary" in structural[0].title
    codes = _by_probe(findings, "tokenizer.codes")
    assert codes and not any("pieces" in f.title or "adding the top" in f.title for f in codes)
    assert all(f.evidence.get("unknown_occurrence_rate", 0) == 0 for f in codes)
    assert "judged" in _by_probe(findings, "tokenizer.roundtrip")[0].evidence


def test_high_min_frequency_is_reported_as_an_unknown_rate(train, test_texts):
    tok = build_code_tokenizer(train, min_frequency=20)
    findings = run_tokenizer_probes(tok, test_texts, EhrDebugConfig())
    failed = [f for f in findings if f.severity == Severity.FAIL]
    assert len(failed) == 1 and failed[0].probe == "tokenizer.codes", [f.title for f in failed]
    fail = failed[0]
    feats = [encode_record(tok, r, 512) for r in _records("test")]
    words = sum(len(t.split()) for t in test_texts)
    expected = summarize(feats)["unknown_codes"] / words
    assert fail.evidence["unknown_rate"] == pytest.approx(expected, abs=1e-4)
    assert (
        "[UNK]" in fail.title
        and fail.recipes == ["lower-code-min-frequency"]
        and "lower-code-min-frequency" in ALL
    )
    counts = Counter(c for r in _records("test") for c in r["codes"] if c not in tok.get_vocab())
    assert repr(counts.most_common(1)[0][0]) in fail.examples[0]
    per_system = [f for f in _by_probe(findings, "tokenizer.codes") if "distinct_unknown_codes" in f.evidence]
    assert per_system and all(f.severity == Severity.INFO for f in per_system)
    assert not any("split" in f.title or "pieces" in f.title for f in findings)
    assert (
        _by_probe(findings, "tokenizer.roundtrip")[0].severity == Severity.OK
    )  # unknown is not a round-trip change


def _word_level(vocab: list[str], lowercase: bool = False) -> Tokenizer:
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if lowercase:
        backend.normalizer = normalizers.Lowercase()
    return backend


def test_structural_token_in_a_plain_vocabulary_is_right_and_a_missing_one_is_named():
    texts = ["401.9 [VS] 428.0 [VS]", "401.9 [VS]"]
    present = as_handle(_word_level(["[UNK]", "[VS]", "401.9", "428.0"]))
    assert present.word_level
    found = run_tokenizer_probes(present, texts, EhrDebugConfig())
    structural = _by_probe(found, "tokenizer.structural")
    assert [f.severity for f in structural] == [
        Severity.OK
    ]  # no "after a word" false alarm for whitespace words
    missing = as_handle(_word_level(["[UNK]", "401.9", "428.0"]))
    structural = _by_probe(run_tokenizer_probes(missing, texts, EhrDebugConfig()), "tokenizer.structural")
    assert structural[0].severity == Severity.FAIL and "not in the vocabulary" in structural[0].title
    assert "split" not in structural[0].title


def test_word_level_roundtrip_catches_a_lowercasing_vocabulary():
    tok = as_handle(_word_level(["[UNK]", "v3001", "401.9"], lowercase=True))
    findings = _by_probe(
        run_tokenizer_probes(tok, ["V3001 401.9"] * 5, EhrDebugConfig()), "tokenizer.roundtrip"
    )
    assert findings[0].severity == Severity.WARN and "lower-cased" in findings[0].title
    assert "'V3001' → 'v3001'" in findings[0].examples[0]


def test_meds_style_codes_are_grouped_by_prefix():
    records = [
        {
            "codes": ["ICD10CM//E11.9", "LAB//K", "ICD10CM//I10"],
            "visits": [0, 0, 1],
            "values": [None, 4.1, None],
        }
    ] * 3
    tok = build_code_tokenizer(records)
    texts = [record_text(r) for r in records] + ["ICD10CM//Z99 LAB//K [VS]"]
    codes = _by_probe(run_tokenizer_probes(tok, texts, EhrDebugConfig()), "tokenizer.codes")
    titles = {f.title.split(" codes")[0]: f for f in codes if "distinct_unknown_codes" in f.evidence}
    assert set(titles) == {"ICD10CM", "LAB"}
    assert titles["ICD10CM"].evidence["distinct_unknown_codes"] == 1 and titles["LAB"].severity == Severity.OK
    assert UNK_ID == tok.unk_token_id


CLI = (
    "import sys\n"
    "from ehrdebug.cli.app import main\n"
    "code = main(['check', 'tokenizer', sys.argv[1], '--data', sys.argv[2], '--format', 'json', '-o', sys.argv[3]])\n"
    "assert 'torch' not in sys.modules, 'torch was imported'\n"
    "print('EXIT', code)\n"
)


@pytest.mark.parametrize(("min_frequency", "exit_code"), [(1, 0), (20, 1)])
def test_check_tokenizer_reads_code_records(tmp_path, train, min_frequency, exit_code):
    build_code_tokenizer(train, min_frequency=min_frequency).save_pretrained(tmp_path / "tok")
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", CLI, str(tmp_path / "tok"), str(SHIPPED / "test.jsonl"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"EXIT {exit_code}" in proc.stdout
    report = json.loads(out.read_text())
    read = next(f for f in report["findings"] if f["probe"] == "tokenizer.input")
    assert read["evidence"]["texts"] == len(_records("test"))
    worst = {f["severity"] for f in report["findings"]}
    assert ("fail" in worst) == (exit_code == 1)


def test_every_special_token_configured_as_structural_passes_including_unk(train):
    from ehrdebug.codetok import SPECIAL_TOKENS

    tok = build_code_tokenizer(train)
    config = EhrDebugConfig(structural_tokens=list(SPECIAL_TOKENS))
    structural = _by_probe(run_tokenizer_probes(tok, [record_text(r) for r in train[:50]], config), "tokenizer.structural")
    assert [f.severity for f in structural] == [Severity.OK]
    assert set(structural[0].evidence["tokens"]) == set(SPECIAL_TOKENS)


def test_code_records_with_values_are_read_with_the_saved_bins(tmp_path):
    from ehrdebug.codetok import read_code_texts, saved_value_edges

    records = [{"codes": ["LAB//K", "DX//A"], "values": [3.0 + 0.1 * i, None], "visits": [0, 0]} for i in range(20)]
    tok = build_code_tokenizer(records, value_bins=4)
    tok.save_pretrained(tmp_path / "tok")
    data = tmp_path / "codes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    texts = read_code_texts(str(data), value_bins=saved_value_edges(str(tmp_path / "tok")))
    assert texts[0] == "LAB//K//Q1 DX//A [VS]" and texts[-1].startswith("LAB//K//Q4 ")
    findings = run_tokenizer_probes(load_tokenizer(str(tmp_path / "tok")), texts, EhrDebugConfig())
    assert all(f.severity == Severity.OK for f in findings), [f.title for f in findings if f.severity > Severity.OK]
    plain = tmp_path / "notes.jsonl"
    plain.write_text(json.dumps({"text": "a note"}) + "\n")
    assert read_code_texts(str(plain)) is None
