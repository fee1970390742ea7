"""``ehrdebug doctor`` on checkpoint/model directories: full models, PEFT adapters, and the size guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main


def tiny_gpt2(path: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2)).save_pretrained(path)
    return path


def doctor_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["doctor", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_bare_checkpoint_runs_model_probes_and_saves_beside_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tiny_gpt2(tmp_path / "models" / "tiny")
    before = sorted(p.name for p in ckpt.iterdir())
    code, report = doctor_json([str(ckpt)], capsys)
    assert code == 0
    assert report["meta"]["kind"] == "checkpoint"
    assert report["meta"]["suites"]["model"]["ran"]
    assert any(f["probe"] == "model.trainable" for f in report["findings"])
    assert report["meta"]["suites"]["curves"]["ran"] is False
    assert (tmp_path / "models" / "ehrdebug-doctor-tiny" / "report.json").is_file()
    assert sorted(p.name for p in ckpt.iterdir()) == before


def test_peft_adapter_on_a_local_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2LMHeadModel

    base = tiny_gpt2(tmp_path / "base")
    lora = get_peft_model(GPT2LMHeadModel.from_pretrained(base),
                          LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    assert not (adapter / "config.json").exists()
    code, report = doctor_json([str(adapter)], capsys)
    assert code == 0 and report["meta"]["suites"]["model"]["ran"], report["meta"]["suites"]
    [trainable] = [f for f in report["findings"] if f["probe"] == "model.trainable"]
    assert "lora" in json.dumps(trainable).lower()


def test_adapter_whose_base_is_an_uncached_hub_id_is_refused_not_downloaded(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "chavinlo/alpaca-native"}))
    assert main(["doctor", str(adapter), "--format", "json"]) == 2  # say what to pass (--base), exit 2
    err = capsys.readouterr().err.strip()
    assert "never downloads" in err and "--base" in err and len(err.splitlines()) == 1


def test_a_checkpoint_too_big_for_cpu_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import probes.doctor as doctor

    ckpt = tiny_gpt2(tmp_path / "tiny")
    monkeypatch.setattr(doctor, "MAX_MODEL_BYTES", 1000)
    _, report = doctor_json([str(ckpt)], capsys)
    assert "EHRDEBUG_DOCTOR_MAX_MODEL_GB" in report["meta"]["suites"]["model"]["reason"]
