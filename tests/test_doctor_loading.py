"""The one core loader (``ehrdebug.loading``): Auto heads, registered EHR models, PEFT adapters, pickle refusal,
and the one latest/final-checkpoint lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.errors import UserError


def tiny_gpt2(path: Path, safe: bool = True) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    model.save_pretrained(path)
    if not safe:  # what an older checkpoint holds: only pickled weights
        torch.save(model.state_dict(), path / "pytorch_model.bin")
        (path / "model.safetensors").unlink()
    return path


def test_pickle_only_weights_are_refused_unless_allowed(tmp_path: Path) -> None:
    from ehrdebug.loading import load_model

    ckpt = tiny_gpt2(tmp_path / "old", safe=False)
    with pytest.raises(UserError, match="pickle weights") as err:
        load_model(ckpt)
    assert "--allow-pickle" in str(err.value) and "\n" not in str(err.value)
    model, _ = load_model(ckpt, allow_pickle=True)
    assert type(model).__name__ == "GPT2LMHeadModel"


def test_doctor_refuses_a_pickled_checkpoint_with_the_reason_and_loads_it_with_allow_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tiny_gpt2(tmp_path / "old", safe=False)
    assert main(["doctor", str(ckpt), "--format", "json"]) == 2  # refused, in one line that says why
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pickle" in err[0] and "--allow-pickle" in err[0], err
    assert main(["doctor", str(ckpt), "--format", "json", "--allow-pickle"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["suites"]["model"]["ran"] is True
    assert any(f["probe"] == "model.trainable" for f in report["findings"])


def test_the_saved_head_decides_the_class(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    from ehrdebug.loading import load_model

    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(cfg).save_pretrained(tmp_path / "mlm")
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "cls")
    assert type(load_model(tmp_path / "mlm")[0]).__name__ == "BertForMaskedLM"
    assert type(load_model(tmp_path / "cls")[0]).__name__ == "BertForSequenceClassification"
    assert type(load_model(tiny_gpt2(tmp_path / "gpt2"))[0]).__name__ == "GPT2LMHeadModel"


def test_a_registered_ehr_model_loads_whatever_its_head(tmp_path: Path) -> None:
    behrt = pytest.importorskip("ehrdebug.models.behrt")
    from ehrdebug.loading import load_model

    config = behrt.BehrtConfig.tier("small")
    for cls in (behrt.BehrtForMaskedLM, behrt.BehrtForNextVisit):
        cls(config).save_pretrained(tmp_path / cls.__name__)
        model, tokenizer = load_model(tmp_path / cls.__name__)
        assert type(model) is cls and tokenizer is None and not model.training


def test_peft_adapter_loads_on_its_local_base(tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import GPT2LMHeadModel

    from ehrdebug.loading import load_model

    base = tiny_gpt2(tmp_path / "base")
    adapter = get_peft_model(GPT2LMHeadModel.from_pretrained(base), LoraConfig(r=2, target_modules=["c_attn"]))
    adapter.save_pretrained(tmp_path / "adapter")
    model, _ = load_model(tmp_path / "adapter")
    assert isinstance(model, PeftModel)
    assert any(p.requires_grad for n, p in model.named_parameters() if "lora" in n)  # as it would train


def test_one_latest_and_final_checkpoint_lookup(tmp_path: Path) -> None:
    from ehrdebug.loading import final_checkpoint, latest_checkpoint

    run = tmp_path / "run"
    for step in (2, 10, 4):
        (run / "checkpoints" / f"step-{step}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step}" / "config.json").write_text("{}")
    (run / "checkpoints" / "step-12").mkdir()  # no config.json: not a checkpoint yet (being written)
    assert latest_checkpoint(run) == run / "checkpoints" / "step-10"  # numeric, not lexical
    assert latest_checkpoint(run, model=False) == run / "checkpoints" / "step-12"  # any step (a tokenizer-only one)
    assert final_checkpoint(run) == run / "checkpoints" / "step-10"
    (run / "artifacts").mkdir()
    (run / "artifacts" / "metrics_summary.json").write_text(json.dumps({"best_checkpoint": "checkpoints/step-4"}))
    assert final_checkpoint(run) == run / "checkpoints" / "step-4"  # the best one the run kept
    hf = tmp_path / "hf"
    for step in (500, 1000):
        (hf / f"checkpoint-{step}").mkdir(parents=True)
        (hf / f"checkpoint-{step}" / "adapter_config.json").write_text("{}")
    assert latest_checkpoint(hf) == hf / "checkpoint-1000"
    assert latest_checkpoint(tmp_path / "nothing") is None
