"""The suite for doctor/TUI, and each probe's rule on tokenizers that really do (or don't) break."""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Tokenizer

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.io.tables import read_texts
from ehrdebug.recipe_ids import ALL
from ehrdebug.tokenizers import as_handle, load_tokenizer
from probes.tokenizer_common import tokenize_data
from probes.tokenizer_structural import check_token, find_structural_tokens
from probes.tokenizer_suite import run_tokenizer_probes

HERE = Path(__file__).parent / "fixtures" / "tok"
TINY = HERE / "tiny_bpe"
TEXTS = read_texts(str(HERE / "seq2seq_train.txt"))
TOKENS = ["<demo>", "<v>", "<\\v>", "<END>"]


def _by(findings: list[Finding], probe: str) -> list[Finding]:
    return [f for f in findings if f.probe == probe]


def test_suite_accepts_handle_path_and_backend() -> None:
    cfg = EhrDebugConfig(structural_tokens=TOKENS)
    backend = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    for tok in (load_tokenizer(str(TINY)), str(TINY), backend):
        findings = run_tokenizer_probes(tok, TEXTS, cfg)
        assert {f.probe for f in findings} == {"tokenizer.structural", "tokenizer.codes", "tokenizer.roundtrip", "tokenizer.lengths"}
        assert all(r in ALL for f in findings for r in f.recipes)
        assert [f.severity for f in _by(findings, "tokenizer.structural")] == [Severity.FAIL] * 4


def test_registered_tokens_pass_every_context_and_report_settings() -> None:
    backend = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    backend.add_tokens([AddedToken(t, normalized=False) for t in TOKENS])
    tok = as_handle(backend)
    info = check_token(tok, "<demo>", TEXTS)
    assert info["split_in"] == [] and info["round_trips"]
    assert info["pieces"]["after a space"] == ["<demo>"] and info["pieces"]["after a word"] == ["<demo>"]
    assert info["added_token"]["special"] is False and info["added_token"]["lstrip"] is False
    findings = run_tokenizer_probes(tok, TEXTS, EhrDebugConfig(structural_tokens=TOKENS))
    ok = _by(findings, "tokenizer.structural")
    assert [f.severity for f in ok] == [Severity.OK] and "special=False" in ok[0].evidence["tokens"]["<v>"]


def test_token_matching_only_without_space_is_caught() -> None:
    """A vocabulary piece 'Ġ<v>' makes '<v>' whole after a space but split alone: still a failure."""
    backend = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    backend.add_tokens([AddedToken(" <v>", normalized=False)])
    info = check_token(as_handle(backend), "<v>", TEXTS)
    assert "alone" in info["split_in"] and info["n_pieces"] == 3


def test_no_structural_tokens_is_ok_with_figures() -> None:
    findings = run_tokenizer_probes(str(TINY), ["plain text without markup"] * 10, EhrDebugConfig())
    (structural,) = _by(findings, "tokenizer.structural")
    assert structural.severity == Severity.OK and structural.evidence["family"] == "byte-level BPE"
    assert _by(findings, "tokenizer.codes")[0].title == "no medical codes found in the data"
    assert set(find_structural_tokens(TEXTS)) == set(TOKENS)


def test_code_tokens_shorten_sequences_when_added() -> None:
    findings = run_tokenizer_probes(str(TINY), TEXTS, EhrDebugConfig(structural_tokens=TOKENS, top_n_codes=5))
    top = next(f for f in findings if f.title.startswith("adding the top 5 codes"))
    ev = top.evidence
    assert ev["codes_added"] == 5 and 0 < ev["coverage_of_code_occurrences"] < 1
    assert ev["mean_length_after"] < ev["mean_length_before"]
    nodot = next(f for f in findings if f.title.startswith("icd9_nodot codes"))
    assert nodot.severity == Severity.WARN and nodot.evidence["mean_pieces_per_code"] > 3
    assert set(nodot.evidence["pieces_distribution"]) <= {"1", "2", "3", "4", "5+"}


def test_thresholds_come_from_config() -> None:
    cfg = EhrDebugConfig(structural_tokens=TOKENS)
    cfg.thresholds["code_pieces_warn"] = 50.0
    findings = run_tokenizer_probes(str(TINY), TEXTS, cfg)
    assert all(f.severity == Severity.OK for f in findings if f.title.startswith(("icd9 codes", "icd9_nodot codes")))


def test_truncation_cutting_end_token_fails_and_left_fit_passes() -> None:
    cfg = EhrDebugConfig(structural_tokens=TOKENS, max_length=60)
    (lengths,) = _by(run_tokenizer_probes(str(TINY), TEXTS, cfg), "tokenizer.lengths")
    assert lengths.severity == Severity.FAIL and lengths.recipes == ["fix-truncation"]
    assert lengths.evidence["end_token"] == "<END>" and lengths.evidence["end_token_cut_off"] == lengths.evidence["truncated"] > 0
    (ok,) = _by(run_tokenizer_probes(str(TINY), TEXTS, cfg.with_overrides(max_length=4096)), "tokenizer.lengths")
    assert ok.severity == Severity.OK and ok.evidence["truncated"] == 0


def test_saved_truncation_setting_does_not_distort_lengths() -> None:
    backend = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    backend.enable_truncation(16)
    (lengths,) = _by(run_tokenizer_probes(backend, TEXTS, EhrDebugConfig(max_length=60)), "tokenizer.lengths")
    assert lengths.evidence["max"] > 100
    assert backend.truncation is not None  # the caller's tokenizer is left as it was


def test_one_pass_lengths_match_encode_with_specials() -> None:
    tok = load_tokenizer(str(TINY))
    data = tokenize_data(tok, TEXTS, sample_size=100)
    assert data.meta["one_pass"] and len(data.encodings) == 100
    assert data.lengths == [len(e) for e in tok.backend.encode_batch(TEXTS)]
