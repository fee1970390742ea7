"""model.special_token_probability on models where seed 000's failures really happen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from probes.special_tokens import example_pair, special_token_probability

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401

CFG = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"], end_token="<END>")
HELD_OUT = mf.ehr_examples(8, seed=9)


def _by_title(findings, word):
    return [f for f in findings if word in f.title]


def test_random_new_tokens_in_copy_pretrained_bart_fail():
    model, tok, base, _ = mf.bart_with_new_tokens("random", 20)
    findings = special_token_probability(model, tok, HELD_OUT, CFG, base_vocab_size=base)
    fail = [f for f in findings if f.severity == Severity.FAIL]
    assert fail, [f.title for f in findings]
    ev = fail[0].evidence
    assert ev["expected_first"] == ["<v>"]
    assert ev["expected_first_mean_prob"] < CFG.threshold("expected_token_prob_fail")
    # the model prefers pieces it copies from the prompt (seed 000: 'AS' 71.4%, '56' 22%)
    prompt_words = {w for ex in HELD_OUT for w in ex["prompt"].split()}
    assert ev["top_k_first_position"][0]["piece"] in prompt_words | {"<s>", "</s>"}
    assert all(row["new"] and row["mean_prob"] < 0.01 for row in ev["structural_tokens"])
    assert "init-new-embeddings-mean" in fail[0].recipes
    assert fail[0].examples[0]["expected"] == "<v>" and fail[0].examples[0]["rank"] > 1
    first = ev["first_position_probs"]  # seed 000's "after prompt, probability of <v> / <END> / PAD / EOS"
    assert set(first) >= {"<v>", "<END>", "<pad>", "</s>"} and first["<v>"] < 0.01


def test_pretrained_eos_dominates_after_demo():
    model, tok, base, _ = mf.llama_with_new_tokens(10)
    findings = special_token_probability(model, tok, HELD_OUT, CFG, base_vocab_size=base)
    eos = _by_title(findings, "EOS")
    assert eos and eos[0].severity == Severity.FAIL
    assert eos[0].evidence["eos_prob_first_position"] >= 0.5
    assert eos[0].evidence["pretrained_eos"] == "</s>" and eos[0].evidence["dataset_end_token"] == "<END>"
    assert eos[0].recipes == ["block-pretrained-eos"]
    # once the decoding blocks that EOS (the fix), the same mass is reported, but only as info
    blocked = special_token_probability(model, tok, HELD_OUT, CFG, base_vocab_size=base,
                                         generation_kwargs={"bad_words_ids": [[tok.eos_token_id]]})
    eos_blocked = _by_title(blocked, "EOS")
    assert eos_blocked and eos_blocked[0].severity == Severity.INFO
    assert eos_blocked[0].evidence["blocked_by_decoding"] is True
    assert eos_blocked[0].evidence["eos_prob_first_position"] == eos[0].evidence["eos_prob_first_position"]


def test_whole_line_targets_are_read_after_demo():
    model, tok, base, _ = mf.llama_with_new_tokens(10)
    prompt_only = [{"prompt": "", "target": f"{e['prompt']} {e['target']}"} for e in HELD_OUT]
    findings = special_token_probability(model, tok, prompt_only, CFG, base_vocab_size=base)
    assert findings[0].evidence["expected_first"] == ["<v>"]
    assert [f for f in findings if "EOS" in f.title][0].evidence["eos_prob_first_position"] >= 0.5


@pytest.mark.slow
def test_trained_model_with_mean_init_is_ok():
    model, tok, base, _ = mf.llama_with_new_tokens(300)
    findings = special_token_probability(model, tok, HELD_OUT, CFG, base_vocab_size=base)
    assert max(f.severity for f in findings) <= Severity.INFO, [f.title for f in findings]
    ok = findings[0]
    assert ok.evidence["expected_first_mean_prob"] > 0.5
    assert ok.evidence["eos"]["eos_prob_first_position"] < 0.1


def test_t5_trained_on_unmasked_padding_prefers_pad():
    model, tok = mf.t5_scenario("pad")
    f = special_token_probability(model, tok, mf.diagnosis_examples(4, seed=3))[0]
    assert f.severity == Severity.FAIL and f.recipes == ["mask-label-padding"]
    assert f.evidence["top_k_first_position"][0]["piece"] == "<pad>"
    healthy, htok = mf.t5_scenario("healthy")
    ex = [{"input": f"{mf.PREFIX} {e['input']}", "output": e["output"]} for e in mf.diagnosis_examples(4, seed=3)]
    assert [x.severity for x in special_token_probability(healthy, htok, ex)] == [Severity.OK]


def test_example_pair_formats():
    assert example_pair({"prompt": "a", "target": "b"}) == ("a", "b")
    assert example_pair({"input": "x", "output": "y"}) == ("x", "y")
    assert example_pair({"text": "56 ASIAN M <demo> <v> 486 <\\v> <END>"}) == ("56 ASIAN M <demo>", "<v> 486 <\\v> <END>")
    with pytest.raises(ValueError):
        example_pair({"foo": 1})
