"""model.trainable: LoRA targets/rank and new tokens in frozen embeddings."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from ehrdebug.findings import Severity
from probes.trainable import trainable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401


def _lora(model, modules_to_save=None):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                           modules_to_save=modules_to_save))


def test_lora_with_new_tokens_and_frozen_embeddings_fails():
    model, _, base, _ = mf.llama_with_new_tokens(10)
    findings = trainable(_lora(model), base)
    assert findings[0].severity == Severity.FAIL and findings[0].recipes == ["lora-train-embeddings"]
    ev = findings[0].evidence
    assert ev["new_tokens"] == 3 and ev["embeddings_trainable"] is False
    assert ev["peft"]["default"]["r"] == 4 and ev["peft"]["default"]["target_modules"] == ["q_proj", "v_proj"]
    assert ev["peft"]["lora_layers"] == 2 and 0 < ev["trainable_share"] < 0.2


def test_lora_with_modules_to_save_is_ok():
    model, _, base, _ = mf.llama_with_new_tokens(10)
    findings = trainable(_lora(model, ["embed_tokens", "lm_head"]), base)
    assert findings[0].severity == Severity.OK
    assert findings[0].evidence["embeddings_trainable"] and findings[0].evidence["lm_head_trainable"]


def test_nothing_trainable_fails_and_full_finetune_is_ok():
    model, _, base, _ = mf.llama_with_new_tokens(10)
    assert trainable(model, base)[0].severity == Severity.OK
    frozen = copy.deepcopy(model).requires_grad_(False)
    assert trainable(frozen, base)[0].severity == Severity.FAIL
