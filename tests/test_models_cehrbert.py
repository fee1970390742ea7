"""CEHR-BERT and its BigBird variant: forward, block-sparse attention, Auto round trip, LoRA, gradients, learning."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cehr_fixtures as cf  # noqa: E402

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


@pytest.fixture(autouse=True)
def _single_thread():
    with cf.one_thread():
        yield


def _config(tok, **kw):
    from ehrdebug.models.cehrbert import CehrBertConfig

    return CehrBertConfig.for_tokenizer(tok, **{**TINY, **kw})


def test_masked_lm_and_classifier_forward_both_attentions():
    import torch

    from ehrdebug.models.cehrbert import CehrBertForMaskedLM, CehrBertForSequenceClassification

    records = cf.timeline_records(6)
    tok = cf.tokenizer(records)
    batch = cf.batch(tok, records)
    for attention in ("full", "bigbird"):
        torch.manual_seed(0)
        mlm = CehrBertForMaskedLM(_config(tok, attention=attention))
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        out = mlm(**batch, labels=labels)
        assert out.logits.shape == (*batch["input_ids"].shape, len(tok)) and torch.isfinite(out.loss)
        assert mlm.cls.predictions.decoder.weight is mlm.cehrbert.embeddings.code_embed.weight  # tied
        clf = CehrBertForSequenceClassification(_config(tok, attention=attention, num_labels=1))
        out = clf(**batch, labels=torch.tensor([r["label"] for r in records]))
        assert out.logits.shape == (6, 1) and torch.isfinite(out.loss)


def test_padding_does_not_change_full_attention_outputs():
    import torch

    from ehrdebug.models.cehrbert import CehrBertModel

    records = cf.timeline_records(3)
    tok = cf.tokenizer(records)
    model = CehrBertModel(_config(tok)).eval()
    both = cf.batch(tok, records[:2])
    alone = cf.batch(tok, records[1:2])
    n = int(alone["attention_mask"].sum())
    with torch.no_grad():
        padded = model(**both).last_hidden_state[1, :n]
        single = model(**alone).last_hidden_state[0, :n]
    assert torch.allclose(padded, single, atol=1e-5)


def test_bigbird_runs_block_sparse_on_long_sequences_and_full_on_short():
    import torch
    from transformers.models.big_bird.modeling_big_bird import (
        BigBirdBlockSparseAttention,
        BigBirdSelfAttention,
    )

    from ehrdebug.models.cehrbert import CehrBertModel

    tok = cf.tokenizer()
    model = CehrBertModel(
        _config(tok, attention="bigbird", block_size=8, num_random_blocks=1, max_position_embeddings=512)
    )
    assert not model.sparse_applies(56) and model.sparse_applies(57)
    long_ids = torch.randint(10, len(tok), (2, 203))  # not a multiple of the block: padded inside, cut after
    mask = torch.ones_like(long_ids)
    mask[1, 150:] = 0
    out = model(input_ids=long_ids, attention_mask=mask).last_hidden_state
    assert out.shape == (2, 203, 32)
    assert isinstance(model.encoder.layer[0].attention.self, BigBirdBlockSparseAttention)
    out.sum().backward()
    assert model.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    model(input_ids=long_ids[:, :40])
    assert isinstance(model.encoder.layer[0].attention.self, BigBirdSelfAttention)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(input_ids=torch.randint(10, len(tok), (1, 600)))


def test_auto_classes_round_trip_through_safetensors(tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification

    import ehrdebug.models as models
    from ehrdebug.models.cehrbert import CehrBertForMaskedLM, CehrBertForSequenceClassification

    records = cf.timeline_records(4)
    tok = cf.tokenizer(records)
    batch = cf.batch(tok, records)
    for cls, auto, attention in ((CehrBertForMaskedLM, AutoModelForMaskedLM, "full"),
                                 (CehrBertForSequenceClassification, AutoModelForSequenceClassification, "bigbird")):  # fmt: skip
        model = cls(_config(tok, attention=attention, num_labels=1)).eval()
        path = tmp_path / cls.__name__
        model.save_pretrained(path)
        assert (path / "model.safetensors").is_file()
        assert AutoConfig.from_pretrained(path).attention == attention
        back = auto.from_pretrained(path).eval()
        assert type(back) is cls
        again = models.load_pretrained(str(path)).eval()
        with torch.no_grad():
            assert torch.allclose(model(**batch).logits, back(**batch).logits, atol=1e-6)
            assert torch.allclose(model(**batch).logits, again(**batch).logits, atol=1e-6)


def test_every_parameter_gets_a_gradient():
    import torch

    from ehrdebug.models.cehrbert import CehrBertForSequenceClassification

    records = cf.timeline_records(8)
    tok = cf.tokenizer(records)
    model = CehrBertForSequenceClassification(_config(tok, num_labels=1))
    model(**cf.batch(tok, records), labels=torch.tensor([r["label"] for r in records])).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == []


def test_lora_trains_adapters_embeddings_and_head_only():
    import torch
    from peft import LoraConfig, get_peft_model

    from ehrdebug.models.cehrbert import CehrBertForSequenceClassification

    records = cf.timeline_records(8)
    tok = cf.tokenizer(records)
    model = CehrBertForSequenceClassification(_config(tok, num_labels=1))
    peft_model = get_peft_model(
        model,
        LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["embeddings", "classifier"]),
    )
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any(
        "modules_to_save" in n and "classifier" in n for n in trainable
    )
    assert not any("attention.output.dense" in n or "intermediate" in n for n in trainable)
    total = sum(p.numel() for p in peft_model.parameters())
    assert sum(p.numel() for p in peft_model.parameters() if p.requires_grad) < total
    loss = peft_model(**cf.batch(tok, records), labels=torch.tensor([r["label"] for r in records])).loss
    loss.backward()
    assert all(
        p.grad is not None for n, p in peft_model.named_parameters() if p.requires_grad and "lora_A" in n
    )


@pytest.mark.parametrize("attention", ["full", "bigbird"])
def test_classifier_learns_a_timing_pattern(attention):
    """The label is "over a year between the visits": only the inserted time tokens / time values carry it."""
    import torch

    from ehrdebug.models.cehrbert import CehrBertForSequenceClassification

    records = cf.timeline_records(64, seed=1)
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    model = CehrBertForSequenceClassification(
        _config(tok, attention=attention, num_labels=1, hidden_dropout_prob=0.0)
    )
    batches = [
        (cf.batch(tok, records[i : i + 16]), torch.tensor([r["label"] for r in records[i : i + 16]]))
        for i in range(0, 64, 16)
    ]
    losses = cf.train(model, batches, steps=160)
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses


def test_tiers_and_parameter_counts():
    from ehrdebug.models.cehrbert import CehrBertConfig, CehrBertForMaskedLM

    tok = cf.tokenizer()
    small = CehrBertForMaskedLM(CehrBertConfig.for_tokenizer(tok, "small"))
    n = sum(p.numel() for p in small.parameters())
    assert 0.3e6 < n < 0.8e6, n
    assert CehrBertConfig.tier("large", attention="bigbird").attention_type == "block_sparse"
    with pytest.raises(ValueError, match="unknown CEHR-BERT tier"):
        CehrBertConfig.tier("huge")
    with pytest.raises(ValueError, match="attention must be"):
        CehrBertConfig(attention="sparse")
