"""data.collator with real third-party tokenizers (T5 SentencePiece, LLaMA-2): seed 002 and the
pad == EOS causal-LM case, reproduced with the tokenizers users actually have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main

pytestmark = pytest.mark.real_assets

SEED002 = [
    {"input": "Symptoms: Fever, cough. CRP: 67. Imaging: Infiltrate basal right. What is the most likely diagnosis?",
     "output": "Pneumonia"},
    {"input": "Symptoms: Dyspnea, left leg swelling. D-Dimer elevated. What is the most likely diagnosis?",
     "output": "Pulmonary embolism"},
    {"input": "Symptoms: Fatigue, pallor. Hb: low. What is the most likely diagnosis?", "output": "Anemia"},
    {"input": "Symptoms: Chest pain, high troponin, EKG ST-elevation. What is the most likely diagnosis?",
     "output": "Myocardial infarction"},
    {"input": "Symptoms: Polyuria, polydipsia, blood glucose 320 mg/dl. What is the most likely diagnosis?",
     "output": "Diabetes mellitus"},
]


def test_seed002_with_the_real_t5_tokenizer(real_tokenizers: Path, tmp_path: Path, capsys) -> None:
    from transformers import T5Tokenizer

    tokenizer = T5Tokenizer.from_pretrained(str(real_tokenizers / "t5_spiece"))

    def tokenize(example):  # seed 002, verbatim apart from the datasets.map wrapper
        input_enc = tokenizer(example["input"], truncation=True, padding="max_length", max_length=128)
        output_enc = tokenizer(example["output"], truncation=True, padding="max_length", max_length=32)
        input_enc["labels"] = output_enc["input_ids"]
        return {**example, **input_enc}

    data = tmp_path / "tokenized.jsonl"
    data.write_text("".join(json.dumps(tokenize(e)) + "\n" for e in SEED002), encoding="utf-8")
    code = main(["check", "collator", "--data", str(data), "--tokenizer", str(real_tokenizers / "t5_spiece"),
                 "--model-type", "seq2seq", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    crash, pad = report["findings"][0], report["findings"][1]
    assert crash["evidence"]["non_tensor_columns"] == {"input": "string", "output": "string"}
    assert pad["recipes"] == ["mask-label-padding"] and pad["evidence"]["rows_affected"] == 5
    assert "▁P neu moni a </s> <pad>" in pad["examples"][0]["labels (loss positions)"]


def test_llama2_pad_equals_eos_masks_the_eos(real_tokenizers: Path, tmp_path: Path, capsys) -> None:
    from transformers import LlamaTokenizer

    tok = LlamaTokenizer.from_pretrained(str(real_tokenizers / "llama2"))
    rows = [{"input_ids": tok(f"### Note: cough and fever. ### Response: {c}")["input_ids"] + [tok.eos_token_id]}
            for c in ("233604007", "22298006", "38341003")]
    data = tmp_path / "ids.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code = main(["check", "collator", "--data", str(data), "--tokenizer", str(real_tokenizers / "llama2"),
                 "--model-type", "causal", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert any("final EOS is masked" in f["title"] for f in report["findings"])
