"""generation.tf_vs_sampling: teacher-forced scores against free-running generation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from probes.generation import decoding_kwargs, generate_outputs, tf_vs_sampling

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401

CFG = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"], end_token="<END>")
HELD_OUT = mf.ehr_examples(8, seed=9)
CODES = set(mf.CODES)


def test_untrained_new_tokens_diverge_at_the_first_position():
    model, tok, _, _ = mf.bart_with_new_tokens("random", 20)
    findings = tf_vs_sampling(model, tok, HELD_OUT, CFG, code_vocabulary=CODES)
    f = findings[0]
    assert f.severity == Severity.WARN and f.evidence["structurally_valid"] == 0.0
    assert f.evidence["first_divergence"]["median_position"] == 0
    assert f.evidence["first_divergence"]["expected_most_often"] == {"piece": "<v>", "count": 8}
    assert f.evidence["stopped_on_pretrained_eos"] > 0.5  # BART's own </s> ends it


@pytest.mark.slow
def test_hot_sampling_breaks_a_model_that_is_fine_greedy():
    model, tok, _, _ = mf.bart_with_new_tokens("mean", 300)
    greedy = tf_vs_sampling(model, tok, HELD_OUT, CFG, code_vocabulary=CODES)
    assert greedy[0].severity == Severity.OK, greedy[0].title
    assert greedy[0].evidence["structurally_valid"] >= 0.8 and greedy[0].evidence["valid_code_rate"] >= 0.8
    hot = tf_vs_sampling(model, tok, HELD_OUT, CFG, code_vocabulary=CODES,
                         generation_kwargs={"do_sample": True, "temperature": 5.0, "top_k": 50})
    assert hot[0].severity == Severity.FAIL
    assert hot[0].evidence["tf_token_accuracy"] >= 0.7 and hot[0].evidence["structurally_valid"] < 0.5
    assert "lower-temperature" in hot[0].recipes
    assert hot[0].evidence["decoding"]["temperature"] == 5.0


def test_seq2seq_text_task_uses_exact_match():
    model, tok = mf.t5_scenario("healthy")
    ex = [{"input": f"{mf.PREFIX} {e['input']}", "output": e["output"]} for e in mf.diagnosis_examples(6, seed=99)]
    f = tf_vs_sampling(model, tok, ex)[0]
    assert "exact match" in f.title and f.evidence["exact_match"] >= 0.8 and f.severity == Severity.OK
    beams = tf_vs_sampling(model, tok, ex, generation_kwargs={"num_beams": 2})[0]
    assert "beam search, 2 beams" in beams.title and beams.evidence["decoding"]["num_beams"] == 2


def test_decoding_kwargs_stop_on_both_end_tokens():
    _, tok, _, _ = mf.bart_with_new_tokens("random", 20)
    kw = decoding_kwargs(tok, CFG, {"do_sample": True, "temperature": 1.3})
    assert kw["eos_token_id"] == [tok.convert_tokens_to_ids("<END>"), tok.eos_token_id]
    assert kw["temperature"] == 1.3 and kw["max_new_tokens"] == 40
    assert decoding_kwargs(tok, CFG, {"eos_token_id": 5})["eos_token_id"] == 5


def test_generate_outputs_keeps_structural_tokens():
    model, tok, _, _ = mf.bart_with_new_tokens("random", 20)
    gen = generate_outputs(model, tok, [HELD_OUT[0]["prompt"]], CFG, {"max_new_tokens": 5})
    assert len(gen.ids[0]) <= 6 and "</s>" not in gen.texts[0]


def test_end_token_that_is_also_eos_stays_in_the_text() -> None:
    """When the tokenizer's EOS *is* the dataset's <END>, generated text must keep it (the grammar needs it)."""
    import torch

    tok = mf.word_tokenizer([ex["prompt"] + " " + ex["target"] for ex in mf.ehr_examples(40)], added=mf.NEW_TOKENS)
    tok.eos_token = "<END>"
    model = mf.tiny_bart(len(tok))
    target = HELD_OUT[0]["target"]
    target_ids = tok(target, add_special_tokens=False)["input_ids"]

    def fake_generate(**kwargs: object) -> torch.Tensor:
        return torch.tensor([[model.config.decoder_start_token_id, *target_ids]])

    model.generate = fake_generate  # type: ignore[method-assign]
    out = generate_outputs(model, tok, [HELD_OUT[0]["prompt"]], CFG)
    assert out.texts[0].endswith("<END>") and out.ended == [True]
    found = tf_vs_sampling(model, tok, HELD_OUT[:1], CFG, generated=out, code_vocabulary=CODES)
    assert found[0].evidence["structurally_valid"] == 1.0
