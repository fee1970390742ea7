"""Fix-recipes on tiny real models and configs: each changes what it says, on a copy, never the original."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from ehrdebug.errors import UserError

TEXTS = [
    "56 ASIAN M <demo> <v> V3001 250.00 <\\v> <v> 486 <\\v> <END>",
    "71 WHITE F <demo> <v> 401.9 428.0 <\\v> <END>",
    "33 BLACK/AFRICAN AMERICAN M <demo> <v> V3001 V053 <\\v> <END>",
    "the quick brown fox jumps over the lazy dog and the demo of the visit ends",
] * 3


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _tiny_bart(path: Path, added: list[str] | None = None, seed: int = 0) -> Path:
    """A tiny byte-level BPE BART (untrained weights; the fixes only need real shapes and a real tokenizer)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    state = json.loads(bpe._tokenizer.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    tok = BartTokenizer(vocab=state["model"]["vocab"], merges=merges)
    if added:
        tok.add_special_tokens({"extra_special_tokens": added}, replace_extra_special_tokens=False)
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id)
    model = BartForConditionalGeneration(cfg)
    if added:
        with torch.no_grad():
            ids = tok.convert_tokens_to_ids(added)
            model.get_input_embeddings().weight[ids] = torch.randn(len(ids), 16) * 3  # random rows, far from the rest
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def bart_plain(tmp_path_factory) -> Path:
    return _tiny_bart(tmp_path_factory.mktemp("plain") / "ckpt")


@pytest.fixture(scope="module")
def bart_added(tmp_path_factory) -> Path:
    return _tiny_bart(tmp_path_factory.mktemp("added") / "ckpt", added=["<v>", "<\\v>", "<END>"])


@pytest.fixture
def data_config(tmp_path) -> Path:
    """A broken bart_ehrgen config in the train recipes' own schema, over a tiny data root."""
    data = tmp_path / "data" / "seq2seq"
    data.mkdir(parents=True)
    with open(data / "train.jsonl", "w") as fh:
        for t in TEXTS[:3] * 4:
            prompt, _, target = t.partition(" <v>")
            fh.write(json.dumps({"prompt": prompt.strip(), "target": "<v>" + target, "text": t}) + "\n")
    cfg = {
        "recipe": "bart_ehrgen", "data": {"task": "seq2seq", "root": "data"}, "special_tokens": ["<v>", "<\\v>", "<END>"],
        "new_token_init": "random", "epochs": 30, "warmup_steps": 0, "batch_size": 4, "early_stopping": {"patience": None},
        "label_pad": "pad", "drop_string_columns": False, "task_prefix": "", "inference_prefix": "", "out": "runs/broken",
        "use_lora": True, "generation": {"temperature": 1.3, "top_k": 50, "do_sample": True, "eos": None, "block_pretrained_eos": False},
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_registry_covers_every_fix_id():
    from ehrdebug.recipe_ids import FIX
    from recipes.fixes import REGISTRY

    assert set(REGISTRY) == set(FIX)
    for fix in REGISTRY.values():
        assert fix.answers and fix.applies_to and fix.describe().startswith(fix.id)


def test_unknown_and_advice_ids_are_user_errors():
    from recipes.fixes import get

    with pytest.raises(UserError, match="did you mean 'early-stopping'"):
        get("early-stoping")
    with pytest.raises(UserError, match="advice"):
        get("split-by-patient")


def test_register_structural_tokens_on_checkpoint(bart_plain, tmp_path):
    from recipes.fixes import REGISTRY, apply_fixes
    from recipes.fixes.surgery import load_model, load_tokenizer

    before = _digest(bart_plain)
    tok0 = load_tokenizer(bart_plain)
    assert len(tok0.encode("<demo>", add_special_tokens=False)) > 1  # really fragments first
    preview = REGISTRY["register-structural-tokens"].preview(bart_plain)
    assert any("<demo>" in line for line in preview)
    result = apply_fixes(bart_plain, ["register-structural-tokens"], tmp_path / "out")
    assert _digest(bart_plain) == before  # the original is byte-identical
    tok = load_tokenizer(result.checkpoint)
    for t in ("<demo>", "<v>", "<\\v>", "<END>"):
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    ids = tok("56 ASIAN M <demo>", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<demo>") in ids
    model = load_model(result.checkpoint)
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == len(tok)
    new = tok.convert_tokens_to_ids("<demo>")
    assert (weight[new] - weight[: len(tok0)].mean(0)).abs().max() < 1e-5  # never random
    record = json.loads((result.out_dir / "fixes.json").read_text())
    assert record["fixes"][0]["id"] == "register-structural-tokens" and record["fixes"][0]["changes"]


def test_init_mean_and_description_on_checkpoint(bart_added, tmp_path):
    import torch

    from recipes.fixes import apply_fixes
    from recipes.fixes.surgery import base_vocab_size, load_model, load_tokenizer

    before = _digest(bart_added)
    tok = load_tokenizer(bart_added)
    base = base_vocab_size(tok)
    ids = tok.convert_tokens_to_ids(["<v>", "<\\v>", "<END>"])
    orig = load_model(bart_added).get_input_embeddings().weight.detach().clone()
    mean = orig[:base].mean(0)
    assert (orig[ids] - mean).norm(dim=1).min() > 1.0  # random rows far from the mean

    res = apply_fixes(bart_added, ["init-new-embeddings-mean"], tmp_path / "mean")
    w = load_model(res.checkpoint).get_input_embeddings().weight.detach()
    for i in ids:
        assert torch.allclose(w[i], mean, atol=1e-5)
    assert torch.equal(w[:base], orig[:base])  # pretrained rows untouched

    res = apply_fixes(bart_added, ["init-new-embeddings-description"], tmp_path / "desc")
    w = load_model(res.checkpoint).get_input_embeddings().weight.detach()
    from recipes.fixes.surgery import pieces_without_added

    pieces = pieces_without_added(tok, "<END>", ids)
    assert len(pieces) > 1 and all(p < base for p in pieces)
    end = tok.convert_tokens_to_ids("<END>")
    assert torch.allclose(w[end], orig[pieces].mean(0), atol=1e-5)
    assert _digest(bart_added) == before


def test_block_pretrained_eos_on_checkpoint(bart_added, tmp_path):
    from recipes.fixes import apply_fixes
    from recipes.fixes.surgery import load_model, load_tokenizer

    res = apply_fixes(bart_added, ["block-pretrained-eos", "anti-repetition-decoding"], tmp_path / "out")
    gen = json.loads((res.checkpoint / "generation_config.json").read_text())
    tok = load_tokenizer(res.checkpoint)
    assert gen["eos_token_id"] == tok.convert_tokens_to_ids("<END>")
    assert gen["bad_words_ids"] == [[tok.eos_token_id]]
    assert gen.get("no_repeat_ngram_size") in (None, 0)  # EHR sequences repeat <\v> <v> by design
    import torch

    model = load_model(res.checkpoint)
    enc = tok("56 ASIAN M", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    assert tok.eos_token_id not in out[0, 1:].tolist()
    assert isinstance(out, torch.Tensor)


def test_config_fixes_write_a_new_config(data_config, tmp_path, monkeypatch):
    from recipes.fixes import apply_fixes
    from recipes.fixes.base import load_yaml

    monkeypatch.chdir(tmp_path)
    original = data_config.read_bytes()
    ids = ["register-structural-tokens", "init-new-embeddings-mean", "block-pretrained-eos", "early-stopping",
           "lower-temperature", "remove-string-columns", "mask-label-padding", "add-task-prefix",
           "anti-repetition-decoding", "warmup-new-embeddings", "lora-train-embeddings", "add-code-tokens"]
    res = apply_fixes(data_config, ids, tmp_path / "fixed")
    assert data_config.read_bytes() == original
    cfg = load_yaml(res.config_path)
    assert cfg["special_tokens"][:3] == ["<v>", "<\\v>", "<END>"] and "<demo>" in cfg["special_tokens"]
    assert cfg["new_token_init"] == "mean"
    assert cfg["generation"]["eos"] == "<END>" and cfg["generation"]["block_pretrained_eos"] is True
    assert cfg["generation"]["temperature"] == 1.0
    assert cfg["early_stopping"]["patience"] >= 1
    assert cfg["drop_string_columns"] is True and cfg["label_pad"] == -100
    assert cfg["task_prefix"].strip()
    assert cfg["generation"]["repetition_penalty"] > 1.0
    assert cfg["warmup_steps"] >= 10
    assert "lm_head" in cfg["lora"]["modules_to_save"]
    assert cfg["add_code_tokens"] > 0
    assert Path(cfg["data"]["root"]).is_absolute() and cfg["out"].startswith(str(tmp_path / "fixed"))
    recorded = json.loads((res.out_dir / "fixes.json").read_text())
    assert [f["id"] for f in recorded["fixes"]] == ids
    text = res.config_path.read_text()
    assert all(i in text for i in ids)  # a ``fixes`` list or, where the schema has none, comments
    from recipes.train import load_recipe_config

    trained = load_recipe_config(str(res.config_path))  # the fixed config is a valid training config
    assert trained["label_pad"] == -100 and trained["generation"]["block_pretrained_eos"] is True


def test_top_codes_counts_the_data(data_config, tmp_path, monkeypatch):
    from recipes.fixes import resolve_target
    from recipes.fixes.tokens import structural_tokens, top_codes

    monkeypatch.chdir(tmp_path)
    target = resolve_target(data_config)
    assert top_codes(target, 2) == ["V3001", "250.00"] or top_codes(target, 1) == ["V3001"]
    assert structural_tokens(target)[:2] == ["<v>", "<\\v>"] or "<v>" in structural_tokens(target)


def test_never_overwrites_and_rejects_bad_targets(data_config, tmp_path):
    from recipes.fixes import apply_fixes

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        apply_fixes(data_config, ["early-stopping"], out)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError, match="not found"):
        apply_fixes(tmp_path / "nope", ["early-stopping"], tmp_path / "o2")
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(UserError):
        apply_fixes(bad, ["early-stopping"], tmp_path / "o3")


def test_config_only_fix_on_checkpoint(bart_plain, tmp_path):
    from recipes.fixes import apply_fixes

    with pytest.raises(UserError, match="needs a config"):
        apply_fixes(bart_plain, ["early-stopping"], tmp_path / "o")
    res = apply_fixes(bart_plain, ["early-stopping", "register-structural-tokens"], tmp_path / "o2", skip_inapplicable=True)
    assert res.skipped and res.skipped[0]["id"] == "early-stopping" and res.checkpoint is not None


def test_train_longer_lifts_a_step_cap_else_doubles_the_epochs(data_config, tmp_path, monkeypatch):
    from recipes.fixes import apply_fixes
    from recipes.fixes.base import load_yaml

    monkeypatch.chdir(tmp_path)
    capped = yaml.safe_load(data_config.read_text()) | {"max_steps": 30, "max_minutes": 5}
    (tmp_path / "capped.yaml").write_text(yaml.safe_dump(capped))
    cfg = load_yaml(apply_fixes(tmp_path / "capped.yaml", ["train-longer"], tmp_path / "a").config_path)
    assert cfg["max_steps"] is None and cfg["epochs"] == 30 and cfg["max_minutes"] == 10
    cfg = load_yaml(apply_fixes(data_config, ["train-longer"], tmp_path / "b").config_path)
    assert cfg["epochs"] == 60 and not cfg.get("max_steps")
    again = load_yaml(apply_fixes(tmp_path / "b" / "config.yaml", ["train-longer"], tmp_path / "c").config_path)
    assert again["epochs"] == 120  # each application is one more step up, recorded in the fixes list
    assert [f["id"] for f in again["fixes"]] == ["train-longer", "train-longer"]


def test_lower_learning_rate_divides_the_rate_warms_up_and_clips(data_config, tmp_path, monkeypatch):
    from recipes.fixes import apply_fixes
    from recipes.fixes.base import load_yaml

    monkeypatch.chdir(tmp_path)
    hot = yaml.safe_load(data_config.read_text()) | {"lr": 3e-3, "max_grad_norm": None}
    (tmp_path / "hot.yaml").write_text(yaml.safe_dump(hot))
    res = apply_fixes(tmp_path / "hot.yaml", ["lower-learning-rate"], tmp_path / "fixed")
    cfg = load_yaml(res.config_path)
    assert cfg["lr"] == pytest.approx(1e-3) and cfg["warmup_steps"] >= 50 and cfg["max_grad_norm"] == 1.0
    assert yaml.safe_load((tmp_path / "hot.yaml").read_text())["lr"] == 3e-3  # the original is untouched


def test_constrain_to_labels_edits_t5_configs_and_skips_others(data_config, tmp_path, monkeypatch):
    from recipes.fixes import apply_fixes
    from recipes.fixes.base import load_yaml
    from recipes.train import load_recipe_config

    monkeypatch.chdir(tmp_path)
    t5 = tmp_path / "t5.yaml"
    t5.write_text(yaml.safe_dump({"recipe": "t5_diagnosis", "constrain_to_labels": False}))
    res = apply_fixes(t5, ["constrain-to-labels"], tmp_path / "t5-fixed")
    assert load_yaml(res.config_path)["constrain_to_labels"] is True
    assert load_recipe_config(str(res.config_path))["constrain_to_labels"] is True
    with pytest.raises(UserError, match="t5_diagnosis"):
        apply_fixes(data_config, ["constrain-to-labels"], tmp_path / "bart-fixed")
    assert not (tmp_path / "bart-fixed").exists()
    res = apply_fixes(data_config, ["constrain-to-labels", "early-stopping"], tmp_path / "bart-auto", skip_inapplicable=True)
    assert [r["id"] for r in res.applied] == ["early-stopping"] and res.skipped[0]["id"] == "constrain-to-labels"
