"""model.new_embeddings: init kind, rows that never moved, lm_head out of step, missing keys at load."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from ehrdebug.findings import Severity
from probes.embeddings import load_and_check, load_keys, new_embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401


def test_random_rows_are_told_from_mean_rows():
    model, tok, base, start = mf.bart_with_new_tokens("random", 20)
    findings = new_embeddings(model, base, reference_state=start, tokenizer=tok)
    warn = [f for f in findings if f.severity == Severity.WARN]
    assert warn and "randomly initialised" in warn[0].title
    rows = warn[0].examples
    assert {r["piece"] for r in rows} == {"<v>", "<\\v>", "<END>"}
    assert all(r["init"] == "random" and r["percentile"] <= 1 and abs(r["cos_to_base_mean"]) < 0.5 for r in rows)
    assert "init-new-embeddings-mean" in warn[0].recipes

    fresh, ftok = copy.deepcopy(mf.copy_pretrained_bart()[0]), copy.deepcopy(mf.copy_pretrained_bart()[1])
    fbase = len(ftok)
    ftok.add_special_tokens({"additional_special_tokens": mf.NEW_TOKENS})
    fresh.resize_token_embeddings(len(ftok), mean_resizing=True)
    ok = new_embeddings(fresh, fbase, tokenizer=ftok)
    assert max(f.severity for f in ok) <= Severity.INFO
    assert ok[0].evidence["init_kinds"] == ["mean"]


def test_description_init_is_recognised():
    model, tok = copy.deepcopy(mf.copy_pretrained_bart()[0]), copy.deepcopy(mf.copy_pretrained_bart()[1])
    base = len(tok)
    tok.add_special_tokens({"additional_special_tokens": ["M <demo>"]})  # a token whose text has base pieces
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    with torch.no_grad():
        w = model.get_input_embeddings().weight
        w[base] = w[tok.convert_tokens_to_ids(["M", "<demo>"])].mean(0)
    findings = new_embeddings(model, base, tokenizer=tok)
    assert findings[0].evidence["init_kinds"] == ["description"]


def test_frozen_embeddings_never_move_with_lora():
    from peft import LoraConfig, get_peft_model

    model, tok, base, _ = mf.llama_with_new_tokens(10)
    lines = [f"{ln} </s>" for ln in mf._ehr_corpus(60, seed=4)]
    for modules, expect in ((None, Severity.FAIL), (["embed_tokens", "lm_head"], Severity.OK)):
        peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                     modules_to_save=modules))
        ref = {k: v.detach().clone() for k, v in peft_model.state_dict().items()}
        mf.train_causal(peft_model, tok, lines, steps=5, lr=1e-2)
        findings = new_embeddings(peft_model, base, reference_state=ref, tokenizer=tok)
        assert max(f.severity for f in findings) == expect, [f.title for f in findings]
        if expect == Severity.FAIL:
            assert "never moved" in findings[0].title and findings[0].recipes == ["lora-train-embeddings"]
            assert findings[0].evidence["movement"]["base_rows_moved"] == 0
        else:
            assert findings[0].evidence["movement"]["new_rows_moved"] == 3


def test_unseen_new_token_never_moves_while_others_do():
    model, tok, base, _ = mf.llama_with_new_tokens(10)
    model = copy.deepcopy(model)
    tok = copy.deepcopy(tok)
    tok.add_special_tokens({"additional_special_tokens": [*mf.NEW_TOKENS, "<never>"]})
    model.resize_token_embeddings(len(tok))
    ref = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mf.train_causal(model, tok, [f"{ln} </s>" for ln in mf._ehr_corpus(60, seed=4)], steps=3, lr=1e-3)
    warn = [f for f in new_embeddings(model, base, reference_state=ref, tokenizer=tok) if f.severity == Severity.WARN]
    assert warn and "<never>" in warn[0].title and "never moved" in warn[0].title


def test_lm_head_out_of_step_after_manual_resize():
    model = copy.deepcopy(mf.eos_pretrained_llama()[0])
    base = model.get_input_embeddings().weight.shape[0]
    old = model.get_input_embeddings()
    new = torch.nn.Embedding(base + 3, old.weight.shape[1])
    with torch.no_grad():
        new.weight[:base] = old.weight
    model.set_input_embeddings(new)  # the user's resize forgot lm_head (untied)
    findings = new_embeddings(model, base)
    fail = [f for f in findings if f.severity == Severity.FAIL]
    assert fail and "can never be generated" in fail[0].title
    assert fail[0].evidence["lm_head_rows"] == base and fail[0].evidence["embedding_rows"] == base + 3
    assert fail[0].recipes == ["tie-or-resize-lm-head"]


def test_missing_tied_keys_are_harmless_and_untied_lm_head_is_a_loss(tmp_path):
    t5, tok = mf.t5_scenario("healthy")
    tied = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")
    sd = {k: v for k, v in t5.state_dict().items() if k not in tied}
    fresh = mf.tiny_t5(len(tok), seed=5)
    result = fresh.load_state_dict(sd, strict=False)
    assert set(result.missing_keys) == set(tied)  # seed 002's warning, for real
    findings = load_keys(fresh, sd)
    assert findings[0].severity == Severity.INFO
    assert {h["key"] for h in findings[0].evidence["harmless_tied"]} == set(tied)
    assert all(h["tied_to"] == "shared.weight" for h in findings[0].evidence["harmless_tied"])

    llama, ltok = mf.eos_pretrained_llama()  # untied lm_head
    lsd = {k: v for k, v in llama.state_dict().items() if k != "lm_head.weight"}
    assert mf.tiny_llama(len(ltok), seed=9).load_state_dict(lsd, strict=False).missing_keys == ["lm_head.weight"]
    lost = load_and_check(mf.tiny_llama(len(ltok), seed=9), lsd)
    assert lost[0].severity == Severity.FAIL and lost[0].evidence["lost"][0]["key"] == "lm_head.weight"
    assert lost[0].recipes == ["tie-or-resize-lm-head"]

    from transformers import T5ForConditionalGeneration

    t5.save_pretrained(tmp_path)
    loaded, info = T5ForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert load_keys(loaded, loading_info=info)[0].severity == Severity.OK
