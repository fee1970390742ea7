"""BEHRT: Auto-class round trips through safetensors, tiers, masks, heads, LoRA and a model that really learns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import ehrdebug.models as models  # noqa: E402  (registers the Auto classes)
from ehrdebug.codetok import build_code_tokenizer, encode_record  # noqa: E402
from ehrdebug.models.batching import collate_codes, mask_codes, model_inputs  # noqa: E402
from ehrdebug.models.behrt import (  # noqa: E402
    BehrtConfig,
    BehrtForMaskedLM,
    BehrtForNextVisit,
    BehrtForSequenceClassification,
    BehrtModel,
)

SHIPPED = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


def _records(split: str = "train") -> list[dict]:
    return [
        json.loads(line) for line in (SHIPPED / f"{split}.jsonl").read_text().splitlines() if line.strip()
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return build_code_tokenizer(_records())


@pytest.fixture(scope="module")
def batch(tokenizer):
    feats = [encode_record(tokenizer, r, 48, next_visit=True) for r in _records()[:6]]
    return collate_codes(feats)


def _tiny(tokenizer, **kw) -> BehrtConfig:
    return BehrtConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **kw,
    )


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("tier", "low", "high"), [("small", 0.4e6, 0.6e6), ("medium", 2.5e6, 3.5e6), ("large", 13e6, 17e6)]
)
def test_tier_parameter_counts_at_the_shipped_vocabulary(tokenizer, tier, low, high):
    config = BehrtConfig.tier(tier, vocab_size=len(tokenizer))
    n = _count(BehrtForMaskedLM(config))
    assert low <= n <= high, f"{tier}: {n:,} parameters"
    assert config.tier_name == tier
    assert BehrtConfig.tier(tier, num_hidden_layers=1).num_hidden_layers == 1  # overrides win
    with pytest.raises(ValueError, match="unknown BEHRT tier"):
        BehrtConfig.tier("huge")


@pytest.mark.parametrize(
    ("auto", "cls"),
    [
        ("AutoModel", BehrtModel),
        ("AutoModelForMaskedLM", BehrtForMaskedLM),
        ("AutoModelForSequenceClassification", BehrtForSequenceClassification),
    ],
)
def test_save_and_reload_through_auto_classes_gives_identical_outputs(tmp_path, tokenizer, batch, auto, cls):
    torch.manual_seed(0)
    model = cls(_tiny(tokenizer)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "behrt"
    loaded = getattr(transformers, auto).from_pretrained(tmp_path).eval()
    assert type(loaded) is cls
    assert type(transformers.AutoConfig.from_pretrained(tmp_path)) is BehrtConfig
    with torch.no_grad():
        a, b = model(**model_inputs(batch)), loaded(**model_inputs(batch))
    key = "last_hidden_state" if cls is BehrtModel else "logits"
    assert torch.equal(a[key], b[key])


def test_next_visit_head_reloads_through_the_registry(tmp_path, tokenizer, batch):
    torch.manual_seed(0)
    model = BehrtForNextVisit(_tiny(tokenizer)).eval()
    model.save_pretrained(tmp_path)
    loaded = models.load_pretrained(str(tmp_path)).eval()
    assert type(loaded) is BehrtForNextVisit is models.head_class("behrt", "next_visit")
    with torch.no_grad():
        out = loaded(**model_inputs(batch), labels=batch["next_visit_labels"])
        ref = model(**model_inputs(batch), labels=batch["next_visit_labels"])
    assert out.logits.shape == (6, len(tokenizer))
    assert torch.equal(out.logits, ref.logits) and torch.isclose(out.loss, ref.loss)
    with pytest.raises(ValueError, match="no 'survival' head"):
        models.head_class("behrt", "survival")


def test_mlm_decoder_tied_or_untied_survives_a_reload(tmp_path, tokenizer):
    tied = BehrtForMaskedLM(_tiny(tokenizer))
    assert tied.get_output_embeddings().weight is tied.get_input_embeddings().weight
    tied.save_pretrained(tmp_path / "tied")
    again = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "tied")
    assert again.get_output_embeddings().weight is again.get_input_embeddings().weight
    untied = BehrtForMaskedLM(_tiny(tokenizer, tie_word_embeddings=False))
    assert untied.get_output_embeddings().weight.data_ptr() != untied.get_input_embeddings().weight.data_ptr()
    untied.save_pretrained(tmp_path / "untied")
    back = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "untied")
    assert torch.equal(back.get_output_embeddings().weight, untied.get_output_embeddings().weight)
    assert not torch.equal(back.get_output_embeddings().weight, back.get_input_embeddings().weight)


def test_padding_does_not_change_the_real_positions(tokenizer):
    torch.manual_seed(0)
    model = BehrtModel(_tiny(tokenizer)).eval()
    feat = encode_record(tokenizer, _records()[0], 48)
    short = collate_codes([feat])
    padded = collate_codes([feat], pad_to_multiple_of=64)
    n = short["input_ids"].shape[1]
    with torch.no_grad():
        a = model(**model_inputs(short)).last_hidden_state
        b = model(**model_inputs(padded)).last_hidden_state[:, :n]
    assert padded["input_ids"].shape[1] == 64
    assert torch.allclose(a, b, atol=1e-5)


def test_eager_and_sdpa_attention_agree(tokenizer, batch):
    torch.manual_seed(0)
    sdpa = BehrtModel(_tiny(tokenizer)).eval()
    eager = BehrtModel(_tiny(tokenizer, attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    assert eager.config._attn_implementation == "eager"
    with torch.no_grad():
        out = eager(**model_inputs(batch), output_attentions=True, output_hidden_states=True)
        ref = sdpa(**model_inputs(batch))
    assert torch.allclose(out.last_hidden_state, ref.last_hidden_state, atol=1e-5)
    assert len(out.attentions) == 2 and len(out.hidden_states) == 3


def test_every_embedding_table_and_head_gets_a_gradient(tokenizer, batch):
    model = BehrtForSequenceClassification(_tiny(tokenizer, num_labels=1))
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    model(**model_inputs(batch), labels=labels).loss.backward()
    emb = model.behrt.embeddings
    for table in (emb.code_embed, emb.age_embed, emb.segment_embed, emb.position_embed):
        assert table.weight.grad is not None and table.weight.grad.abs().sum() > 0
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.behrt.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_multiclass_head_uses_cross_entropy(tokenizer, batch):
    model = BehrtForSequenceClassification(_tiny(tokenizer, num_labels=3)).eval()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    out = model(**model_inputs(batch), labels=labels)
    assert out.logits.shape == (6, 3)
    assert torch.isclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))


def test_ids_outside_a_table_are_an_error_naming_the_stream(tokenizer, batch):
    model = BehrtModel(_tiny(tokenizer, age_vocab_size=10))
    with pytest.raises(ValueError, match=r"age_ids out of range: ids 0\.\.\d+ for a table of 10"):
        model(**model_inputs(batch))
    with pytest.raises(ValueError, match="time_ids given but the config has no time table"):
        BehrtModel(_tiny(tokenizer))(**model_inputs(batch), time_ids=batch["age_ids"])
    timed = BehrtModel(_tiny(tokenizer, time_vocab_size=50, value_vocab_size=4))
    ids = batch["input_ids"]
    out = timed(**model_inputs(batch), time_ids=torch.zeros_like(ids), value_ids=torch.ones_like(ids))
    assert out.last_hidden_state.shape[:2] == ids.shape


def test_lora_on_query_value_with_embeddings_and_head_saved(tmp_path, tokenizer, batch):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = BehrtForSequenceClassification(_tiny(tokenizer, num_labels=1))
    base.save_pretrained(tmp_path / "base")
    emb = sum(p.numel() for p in base.behrt.embeddings.parameters())  # before wrapping (peft keeps a copy)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["query", "value"], modules_to_save=["embeddings", "classifier"]
    )
    model = peft.get_peft_model(base, config)
    trainable, total = model.get_nb_trainable_parameters()
    hidden, layers = 32, 2
    lora = layers * 2 * (4 * hidden + hidden * 4)  # A (r x h) and B (h x r) on query and value
    head = hidden + 1
    assert trainable == lora + emb + head
    assert 0 < trainable / total < 0.5
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any("key" in n or "intermediate" in n for n in names)
    model.train()
    model(**model_inputs(batch), labels=torch.ones(6)).loss.backward()
    for _, p in model.named_parameters():
        if p.requires_grad and p.grad is not None:
            p.data -= 0.5 * p.grad  # a big step so the adapter really differs from the base
    model.eval()
    with torch.no_grad():
        before = model(**model_inputs(batch)).logits
    model.save_pretrained(tmp_path / "adapter")
    saved = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert "adapter_model.safetensors" in saved and "adapter_config.json" in saved
    fresh = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "base").eval()
    with torch.no_grad():
        plain = fresh(**model_inputs(batch)).logits
    reloaded = peft.PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    with torch.no_grad():
        after = reloaded(**model_inputs(batch)).logits
    assert torch.allclose(before, after, atol=1e-5)
    assert not torch.allclose(
        plain, after, atol=1e-3
    )  # the adapter (and saved embeddings/head) did change it


def _pattern_records(n: int = 64) -> list[dict]:
    """Each visit holds a code pair (A_i, B_i): a masked half is predictable from the other half only."""
    import random

    rng = random.Random(0)
    out = []
    for pid in range(n):
        codes, visits = [], []
        for v in range(3):
            i = rng.randrange(12)
            codes += [f"A{i}", f"B{i}"]
            visits += [v, v]
        out.append({"patient_id": pid, "codes": codes, "ages": [50] * 6, "visits": visits, "days": [0] * 6})
    return out


def test_mlm_learns_a_synthetic_pairing(tokenizer):
    torch.manual_seed(0)
    records = _pattern_records()
    tok = build_code_tokenizer(records)
    model = BehrtForMaskedLM(
        BehrtConfig(
            vocab_size=len(tok),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    )
    batch = collate_codes([encode_record(tok, r, 32) for r in records])
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(150):  # ~1.5 s on one core
        masked = mask_codes(batch, len(tok), probability=0.25, generator=gen)
        loss = model(**model_inputs(masked)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    start, end = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert end < 0.5 * start, (start, end)
    # and it predicts the partner of a masked code, which only the other code of its visit tells
    model.eval()
    probe = collate_codes([encode_record(tok, records[0], 32)])
    ids = probe["input_ids"].clone()
    target = int(ids[0, 2])  # B_i of the first visit
    ids[0, 2] = tok.mask_token_id
    with torch.no_grad():
        logits = model(**{**model_inputs(probe), "input_ids": ids}).logits
    assert int(logits[0, 2].argmax()) == target


def test_inputs_embeds_stand_in_for_the_code_lookup(tokenizer, batch):
    model = BehrtForSequenceClassification(_tiny(tokenizer)).eval()
    inputs = model_inputs(batch)
    ids = inputs.pop("input_ids")
    with torch.no_grad():
        by_ids = model(input_ids=ids, **inputs).logits
        by_embeds = model(inputs_embeds=model.get_input_embeddings()(ids), **inputs).logits
    assert torch.allclose(by_ids, by_embeds, atol=1e-6)
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(**inputs)


def test_config_for_a_value_binned_tokenizer_and_matching_encode_limits():
    from ehrdebug.models.batching import encode_kwargs

    records = [
        {"codes": ["LAB//K", "DX//A"], "values": [3.0 + 0.1 * i, None], "ages": [130, 130], "visits": [0, 0]}
        for i in range(20)
    ]
    tok = build_code_tokenizer(records, value_bins=5)
    config = BehrtConfig.for_tokenizer(tok, "small", num_hidden_layers=1)
    assert (config.vocab_size, config.value_vocab_size, config.pad_token_id) == (len(tok), 6, 0)
    assert config.num_next_visit_labels == len(tok) and config.num_hidden_layers == 1
    feats = [encode_record(tok, r, 16, **encode_kwargs(config)) for r in records]
    assert feats[0]["clamped"]["age"] == 2  # 130 years does not fit the 120-row age table
    out = BehrtModel(config)(**model_inputs(collate_codes(feats)))
    assert out.last_hidden_state.shape == (20, 4, config.hidden_size)


def test_a_classifier_starts_from_an_mlm_checkpoint_encoder(tmp_path, tokenizer, batch):
    torch.manual_seed(0)
    mlm = BehrtForMaskedLM(_tiny(tokenizer))
    mlm.save_pretrained(tmp_path)
    clf, info = BehrtForSequenceClassification.from_pretrained(
        tmp_path, num_labels=1, output_loading_info=True
    )
    assert clf.config.num_labels == 1
    assert torch.equal(clf.behrt.embeddings.age_embed.weight, mlm.behrt.embeddings.age_embed.weight)
    q = "encoder.layer.1.attention.self.query.weight"
    assert torch.equal(clf.behrt.state_dict()[q], mlm.behrt.state_dict()[q])
    assert {"classifier.weight", "behrt.pooler.dense.weight"} <= set(info["missing_keys"])
    assert not [
        k for k in info["missing_keys"] if k.startswith("behrt.encoder") or k.startswith("behrt.embeddings")
    ]


def test_gradient_checkpointing_gives_the_same_gradients(tokenizer, batch):
    torch.manual_seed(0)
    plain = BehrtForMaskedLM(_tiny(tokenizer, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    ckpt = BehrtForMaskedLM(_tiny(tokenizer, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    ckpt.load_state_dict(plain.state_dict())
    ckpt.activation_checkpointing_enable()  # transformers 5 name (gradient_checkpointing_enable is deprecated)
    masked = mask_codes(batch, len(tokenizer), 0.3, generator=torch.Generator().manual_seed(1))
    for model in (plain, ckpt):
        model.train()
        model(**model_inputs(masked)).loss.backward()
    w = "behrt.encoder.layer.0.attention.self.value.weight"
    grads = [dict(m.named_parameters())[w].grad for m in (plain, ckpt)]
    assert ckpt.is_activation_checkpointing and torch.allclose(grads[0], grads[1], atol=1e-6)


def test_a_misspelt_or_leftover_input_is_an_error_not_ignored(tokenizer, batch):
    model = BehrtForMaskedLM(_tiny(tokenizer))
    with pytest.raises(TypeError, match="unexpected inputs: next_visit_labels, special_tokens_mask"):
        model(**batch)  # the collated batch still holds special_tokens_mask: model_inputs() drops it
    with pytest.raises(TypeError, match="segment_id"):
        model(input_ids=batch["input_ids"], segment_id=batch["segment_ids"])


def test_resized_code_table_accepts_the_new_ids(tokenizer, batch):
    model = BehrtForMaskedLM(_tiny(tokenizer))
    model.resize_token_embeddings(len(tokenizer) + 2, mean_resizing=False)
    ids = batch["input_ids"].clone()
    ids[0, 1] = len(tokenizer) + 1
    out = model(**{**model_inputs(batch), "input_ids": ids})
    assert out.logits.shape[-1] == len(tokenizer) + 2
    with pytest.raises(ValueError, match="input_ids out of range"):
        model(**{**model_inputs(batch), "input_ids": ids + 10})


def test_a_later_architecture_adds_an_embedding_stream_by_subclassing(tokenizer, batch):
    from ehrdebug.models.embeddings import STREAMS, EhrEmbeddings

    class WithTokenTypes(EhrEmbeddings):
        streams = {**STREAMS, "token_type_ids": ("type_vocab_size", "type_embed")}

    config = _tiny(tokenizer)
    config.type_vocab_size = 3
    emb = WithTokenTypes(config)
    ids = batch["input_ids"]
    out = emb(ids, token_type_ids=torch.full_like(ids, 2), age_ids=batch["age_ids"])
    assert out.shape == (*ids.shape, 32) and emb.type_embed.num_embeddings == 3
    with pytest.raises(ValueError, match="token_type_ids out of range"):
        emb(ids, token_type_ids=torch.full_like(ids, 3))
    with pytest.raises(TypeError, match="unknown embedding input"):
        EhrEmbeddings(config)(ids, token_type_ids=ids)
