"""Seed 000/002 knobs on the shipped tiny bases: token registration, new-row init, EOS blocking, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipes.train.config import load_recipe_config

REPO = Path(__file__).resolve().parents[1]
BART = REPO / "sample_data" / "bases" / "bart"
T5 = REPO / "sample_data" / "bases" / "t5"
STRUCTURAL = ["<demo>", "<v>", "<\\v>", "<END>"]


@pytest.fixture(scope="module")
def bart():
    from recipes.train.tokens import load_base

    return load_base(str(BART), "bart_ehrgen")


def fresh(base: Path):
    from recipes.train.tokens import load_base

    return load_base(str(base), "")


def test_shipped_bases_load_with_from_pretrained_and_have_bart_t5_ids() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bart_tok = AutoTokenizer.from_pretrained(BART)
    assert (bart_tok.bos_token_id, bart_tok.pad_token_id, bart_tok.eos_token_id) == (0, 1, 2)
    t5_tok = AutoTokenizer.from_pretrained(T5)
    assert (t5_tok.pad_token_id, t5_tok.eos_token_id, t5_tok.unk_token_id) == (0, 1, 2)
    assert t5_tok.convert_tokens_to_ids("<extra_id_0>") == len(t5_tok) - 1
    causal = AutoModelForCausalLM.from_pretrained(REPO / "sample_data" / "bases" / "causal")
    assert causal.config.model_type == "llama"
    for kind in ("bart", "t5", "causal"):
        assert (REPO / "sample_data" / "bases" / kind / "model.safetensors").stat().st_size < 8_000_000


def test_demo_fragments_unless_registered(bart) -> None:
    from recipes.train.tokens import add_tokens, fragments

    tok, model = fresh(BART)
    assert len(fragments(tok, " <demo>")) > 2  # the pretrained BPE splits it, as in the seed
    add_tokens(model, tok, STRUCTURAL, [], "mean")
    assert fragments(tok, "<demo>") == ["<demo>"]
    ids = tok("56 ASIAN M <demo> <v> 250.00 <\\v> <END>")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=False) == "<s>56 ASIAN M <demo> <v> 250.00 <\\v> <END></s>"


@pytest.mark.parametrize("init", ["random", "mean", "description"])
def test_new_rows_start_where_the_config_says(init: str) -> None:
    import torch

    from recipes.train.tokens import add_tokens

    tok, model = fresh(BART)
    info = add_tokens(model, tok, STRUCTURAL, [], init)
    emb = model.get_input_embeddings().weight.detach()
    base = info["base_vocab_size"]
    new = emb[base:]
    assert new.shape[0] == 4 and info["added"] == 4
    mean = emb[:base].mean(0)
    if init == "mean":
        assert torch.allclose(new, mean.expand_as(new))
    elif init == "random":
        assert new.std() < 0.05 and not torch.allclose(new[0], new[1])
        assert new.norm(dim=1).mean() < 0.5 * emb[:base].norm(dim=1).mean()
    else:
        assert not torch.allclose(new[0], mean) and not torch.allclose(new[0], new[1])
    assert model.get_output_embeddings().weight.shape[0] == len(tok)


def test_code_tokens_are_whole_and_round_trip() -> None:
    from recipes.train.tokens import add_tokens, top_codes

    tok, model = fresh(BART)
    codes = top_codes(["<v> 250.00 414.01 <\\v> <END>", "<v> 414.01 V3001 <\\v> <END>"], set(STRUCTURAL), 2)
    assert codes == ["414.01", "250.00"]
    add_tokens(model, tok, STRUCTURAL, codes, "description")
    text = "56 ASIAN M <demo> <v> 414.01 250.00 V3001 <\\v> <END>"
    pieces = tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])
    assert " 414.01" in pieces and " 250.00" in pieces and "ĠV" in pieces  # V3001 was not in the top 2
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_generation_kwargs_block_the_pretrained_eos_and_stop_on_end() -> None:
    from recipes.train.generate import generation_kwargs
    from recipes.train.tokens import add_tokens

    tok, model = fresh(BART)
    add_tokens(model, tok, STRUCTURAL, [], "mean")
    fixed = generation_kwargs(tok, model, load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml"))
    assert fixed["eos_token_id"] == tok.convert_tokens_to_ids("<END>")
    assert fixed["bad_words_ids"] == [[tok.eos_token_id]] and fixed["forced_eos_token_id"] is None
    assert fixed["do_sample"] and fixed["temperature"] == pytest.approx(0.8)
    broken = generation_kwargs(tok, model, load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small_broken.yaml"))
    assert "bad_words_ids" not in broken and "eos_token_id" not in broken
    assert broken["temperature"] == pytest.approx(1.3)


def test_blocked_eos_is_never_generated() -> None:
    import torch

    from recipes.train.bart_ehrgen import generate
    from recipes.train.tokens import add_tokens

    tok, model = fresh(BART)
    add_tokens(model, tok, STRUCTURAL, [], "mean")
    config = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml", ["generation.max_new_tokens=6"])
    torch.manual_seed(0)
    outs = generate(model, tok, ["56 ASIAN M <demo>", "70 WHITE F <demo>"], config, torch.device("cpu"))
    assert all(o.startswith(p) for o, p in zip(outs, ["56 ASIAN M <demo>", "70 WHITE F <demo>"], strict=True))


def _t5_features(overrides: list[str]):
    from recipes.train import data as D
    from recipes.train.t5_diagnosis import pairs

    config = load_recipe_config(REPO / "recipes/configs/t5_diagnosis_small.yaml", overrides)
    tok, model = fresh(T5)
    records = [{"input": "Symptoms: fever, cough.", "output": "Pneumonia", "specialty": "Pulmonology"},
               {"input": "Symptoms: polyuria.", "output": "Diabetes mellitus", "specialty": "Endocrinology"}]  # fmt: skip
    feats = D.make_features(pairs(records, config), tok, config)
    return tok, model, config, feats, D.make_collator(tok, model, config)


def test_t5_prefix_and_ignored_label_padding() -> None:
    tok, _, config, feats, collate = _t5_features([])
    assert tok.decode(feats[0]["input_ids"]).startswith("medical diagnosis: Symptoms")
    batch = collate(feats)
    assert (batch["labels"] == -100).any() and not (batch["labels"] == tok.pad_token_id).any()


def test_t5_label_pad_pad_trains_on_padding() -> None:
    tok, _, _, feats, collate = _t5_features(["label_pad=pad", "pad_to_max_length=true", "task_prefix="])
    batch = collate(feats)
    labels = batch["labels"]
    assert labels.shape[1] == 32  # padded to max_target_length, pad ids kept as training targets
    assert (labels == tok.pad_token_id).sum() >= 8 and not (labels == -100).any()


def test_string_columns_crash_the_collator_as_in_seed_002() -> None:
    _, _, _, feats, collate = _t5_features(["drop_string_columns=false"])
    assert "input" in feats[0]
    with pytest.raises((ValueError, TypeError)):
        collate(feats)
