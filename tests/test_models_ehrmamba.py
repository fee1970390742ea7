"""EHRMamba: right padding + -100 labels, last-non-padding pooling, MPF task heads, Auto round trip, LoRA, learning."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cehr_fixtures as cf  # noqa: E402

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "state_size": 8, "hidden_dropout_prob": 0.0}
TASKS = ("[MOR]", "[LOS]")


@pytest.fixture(autouse=True)
def _single_thread():
    with cf.one_thread():
        yield


def _config(tok, **kw):
    from ehrdebug.models.ehrmamba import EhrMambaConfig

    return EhrMambaConfig.for_tokenizer(tok, **{**TINY, **kw})


@pytest.mark.parametrize("backbone", ["mamba", "mamba2"])
def test_causal_loss_of_a_row_does_not_depend_on_the_padding_around_it(backbone):
    """Right padding + -100 on padding: a row's loss in a padded batch equals its loss alone."""
    import torch

    from ehrdebug.models.cehr_inputs import causal_lm_labels
    from ehrdebug.models.ehrmamba import EhrMambaForCausalLM

    records = cf.timeline_records(4)
    records[0]["codes"] = records[0]["codes"][:2]  # the short row gets padding
    records[0] = {**records[0], **{k: records[0][k][:2] for k in ("ages", "visits", "days")}}
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    model = EhrMambaForCausalLM(_config(tok, backbone=backbone, head_dim=16)).eval()
    padded, alone = cf.batch(tok, records[:2]), cf.batch(tok, records[:1])
    assert padded["attention_mask"][0].eq(0).any()
    with torch.no_grad():
        in_batch = model(**{**padded, "input_ids": padded["input_ids"][:1], "attention_mask": padded["attention_mask"][:1],
                            **{k: v[:1] for k, v in padded.items() if k not in ("input_ids", "attention_mask")}},
                         labels=causal_lm_labels(padded["input_ids"][:1], padded["attention_mask"][:1])).loss  # fmt: skip
        single = model(**alone, labels=causal_lm_labels(alone["input_ids"], alone["attention_mask"])).loss
        logits = model(**padded).logits
        masked = model(**padded, labels=causal_lm_labels(padded["input_ids"], padded["attention_mask"])).loss
    assert torch.allclose(in_batch, single, atol=1e-5)
    # the masked loss is the mean over real next tokens only; the reproduction script's labels (the ids) add
    # "[PAD] follows [PAD]" targets — as many as the padding
    real = padded["attention_mask"][:, 1:].bool()
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), padded["input_ids"][:, 1:], reduction="none"
    )
    assert torch.allclose(masked, nll[real].mean(), atol=1e-5)
    assert int((~real).sum()) == int(padded["attention_mask"].eq(0).sum()) > 0


def test_classifier_pools_the_last_non_padding_token():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(3)
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    model = EhrMambaForSequenceClassification(_config(tok, num_labels=1)).eval()
    both, first = cf.batch(tok, records[:2], max_length=48), cf.batch(tok, records[:1], max_length=48)
    extra = cf.batch(tok, records[:1] + [{"codes": ["C1"] * 30, "days": [0] * 30}], max_length=48)
    assert extra["attention_mask"][0].eq(0).any()  # the first row is padded now
    with torch.no_grad():
        alone = model(**first).logits[0]
        padded = model(**extra).logits[0]
        hidden = model.ehrmamba(**{k: v for k, v in extra.items()})
    assert torch.allclose(alone, padded, atol=1e-5)
    last = int(extra["attention_mask"][0].sum()) - 1
    assert not torch.allclose(hidden[0, -1], hidden[0, last])  # the last position is not the same state
    assert both["input_ids"].shape[0] == 2


def test_multitask_prompts_route_rows_to_their_task_head():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(4)
    tok = cf.tokenizer(records)
    model = EhrMambaForSequenceClassification(_config(tok, task_tokens=TASKS, num_labels=1)).eval()
    assert model.classifier.out_features == 2 and model.config.task_token_ids == tok.convert_tokens_to_ids(
        list(TASKS)
    )
    mor, los = cf.batch(tok, records, task_token="[MOR]"), cf.batch(tok, records, task_token="[LOS]")
    assert model.task_of(mor["input_ids"], None, 4, "cpu").tolist() == [0] * 4
    assert model.task_of(los["input_ids"], None, 4, "cpu").tolist() == [1] * 4
    with torch.no_grad():
        before_mor, before_los = model(**mor).logits.clone(), model(**los).logits.clone()
        model.classifier.bias[1] += 1.0  # only the [LOS] head moves
        assert torch.allclose(model(**mor).logits, before_mor)
        assert torch.allclose(model(**los).logits, before_los + 1.0)
    with pytest.raises(ValueError, match="task token"):
        model(**cf.batch(tok, records))
    shared = EhrMambaForSequenceClassification(
        _config(tok, task_tokens=TASKS, task_heads="shared", num_labels=1)
    )
    assert shared.classifier.out_features == 1
    assert shared(**mor).logits.shape == (4, 1)


@pytest.mark.parametrize("backbone", ["mamba", "mamba2"])
def test_auto_classes_round_trip_through_safetensors(tmp_path, backbone):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    import ehrdebug.models as models
    from ehrdebug.models.ehrmamba import EhrMambaForCausalLM, EhrMambaForSequenceClassification

    records = cf.timeline_records(3)
    tok = cf.tokenizer(records)
    batch = cf.batch(tok, records, task_token="[LOS]")
    for cls, auto in (
        (EhrMambaForCausalLM, AutoModelForCausalLM),
        (EhrMambaForSequenceClassification, AutoModelForSequenceClassification),
    ):
        model = cls(_config(tok, backbone=backbone, head_dim=16, task_tokens=TASKS, num_labels=1)).eval()
        path = tmp_path / f"{backbone}-{cls.__name__}"
        model.save_pretrained(path)
        assert (path / "model.safetensors").is_file()
        back = auto.from_pretrained(path).eval()
        again = models.load_pretrained(str(path)).eval()
        assert (
            type(back) is cls
            and back.config.backbone == backbone
            and back.config.task_token_ids == model.config.task_token_ids
        )
        with torch.no_grad():
            assert torch.allclose(model(**batch).logits, back(**batch).logits, atol=1e-6)
            assert torch.allclose(model(**batch).logits, again(**batch).logits, atol=1e-6)


def test_every_parameter_gets_a_gradient_and_the_backbone_table_is_a_single_row():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(8)
    tok = cf.tokenizer(records)
    model = EhrMambaForSequenceClassification(_config(tok, num_labels=1))
    assert model.ehrmamba.backbone.embeddings.weight.shape[0] == 1
    model(**cf.batch(tok, records), labels=torch.tensor([r["label"] for r in records])).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert missing == ["ehrmamba.backbone.embeddings.weight"]  # never used: inputs_embeds only


def test_lora_on_the_mixer_projections():
    import torch
    from peft import LoraConfig, get_peft_model

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(8)
    tok = cf.tokenizer(records)
    model = EhrMambaForSequenceClassification(_config(tok, num_labels=1))
    wrapped = get_peft_model(
        model,
        LoraConfig(r=4, target_modules=["in_proj", "out_proj"], modules_to_save=["embeddings", "classifier"]),
    )
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and not any("x_proj" in n or "A_log" in n for n in trainable)
    loss = wrapped(**cf.batch(tok, records), labels=torch.tensor([r["label"] for r in records])).loss
    loss.backward()
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if "lora_B" in n)


def test_causal_lm_learns_a_deterministic_timeline():
    """Codes cycle C0 C1 C2 …: next-code loss must fall far below the uniform one."""
    import math

    import torch

    from ehrdebug.models.cehr_inputs import causal_lm_labels
    from ehrdebug.models.ehrmamba import EhrMambaForCausalLM

    records = [
        {"codes": [f"C{(s + i) % 12}" for i in range(10)], "days": [0] * 10, "visits": [0] * 10}
        for s in range(12)
    ]
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    model = EhrMambaForCausalLM(_config(tok))
    batch = cf.batch(tok, records)
    losses = cf.train(
        model, [(batch, causal_lm_labels(batch["input_ids"], batch["attention_mask"]))], steps=60, lr=1e-2
    )
    assert losses[0] > 0.8 * math.log(len(tok)) and losses[-1] < 0.35 * losses[0], losses


@pytest.mark.slow
def test_multitask_fine_tuning_learns_two_tasks_in_one_model():
    """[MOR]: over a year between visits (timing); [LOS]: code X occurs (content) — one model, two heads."""
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(64, seed=2)
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    model = EhrMambaForSequenceClassification(_config(tok, task_tokens=TASKS, num_labels=1))
    batches = []
    for i in range(0, 64, 16):
        part = records[i : i + 16]
        for token, field in (("[MOR]", "label"), ("[LOS]", "has_x")):
            batches.append((cf.batch(tok, part, task_token=token), torch.tensor([r[field] for r in part])))
    losses = cf.train(model, batches, steps=240, lr=5e-3)
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.5 * first, (first, last)
    model.eval()
    with torch.no_grad():
        for token, field in (("[MOR]", "label"), ("[LOS]", "has_x")):
            probs = model(**cf.batch(tok, records, task_token=token)).logits.view(-1).sigmoid()
            truth = torch.tensor([r[field] for r in records])
            assert float(((probs > 0.5).long() == truth).float().mean()) > 0.85, token


def test_tiers_and_parameter_counts():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaConfig, EhrMambaForCausalLM

    tok = cf.tokenizer()
    small = EhrMambaForCausalLM(EhrMambaConfig.for_tokenizer(tok, "small"))
    assert 0.1e6 < sum(p.numel() for p in small.parameters()) < 0.8e6
    with torch.device("meta"):
        large = EhrMambaForCausalLM(EhrMambaConfig.tier("large", vocab_size=len(tok)))
    n = sum(p.numel() for p in large.parameters())
    assert large.config.num_hidden_layers == 24 and large.config.hidden_size == 1024 and 100e6 < n < 250e6, n
    with pytest.raises(ValueError, match="backbone must be"):
        EhrMambaConfig(backbone="s4")


def test_generate_continues_a_timeline_greedily_without_a_cache():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForCausalLM

    tok = cf.tokenizer()
    torch.manual_seed(0)
    model = EhrMambaForCausalLM(_config(tok)).eval()
    ids = cf.batch(tok, cf.timeline_records(2), add_cls=False)["input_ids"][:1]
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False
    )
    with torch.no_grad():
        expected = ids
        for _ in range(4):
            step = model(input_ids=expected).logits[:, -1].argmax(-1, keepdim=True)
            expected = torch.cat([expected, step], dim=1)
    assert torch.equal(out, expected)


def test_last_position_pooling_reads_padding_the_failure_the_zoo_reproduces():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaForSequenceClassification

    records = cf.timeline_records(1) + [{"codes": ["C1"] * 30, "days": [0] * 30}]
    tok = cf.tokenizer(records)
    torch.manual_seed(0)
    wrong = EhrMambaForSequenceClassification(_config(tok, num_labels=1, pooling="last_position")).eval()
    with torch.no_grad():
        alone = wrong(**cf.batch(tok, records[:1], max_length=48)).logits[0]
        padded = wrong(**cf.batch(tok, records, max_length=48)).logits[0]
    assert not torch.allclose(alone, padded, atol=1e-4)  # the prediction depends on the batch's padding
    with pytest.raises(ValueError, match="pooling must be"):
        _config(tok, pooling="mean")
