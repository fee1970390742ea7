"""Tiny PEFT adapters on the shipped causal base, and a fake Hugging Face hub cache that holds the base.

The cache is laid out exactly as huggingface_hub lays it out (``models--org--name/snapshots/<hash>/...``,
``refs/main``), so the offline lookup the doctor does is the one a user's machine does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ehrdebug.data.sample import resolve_data_path

BASE = Path(resolve_data_path("sample_data/bases/causal"))
REPO_ID = "tiny-org/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NEW_TOKENS = ["<code>", "</code>"]


def fake_hub_cache(root: Path, repo_id: str = REPO_ID) -> Path:
    """``root`` as an HF hub cache holding the shipped tiny base under ``repo_id`` (returns the snapshot dir)."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in BASE.iterdir():
        if f.is_file():
            shutil.copy2(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    return snapshot


def make_adapter(out: Path, *, base_name: str | None = None, train_new_tokens: str = "frozen", steps: int = 2,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """A LoRA adapter of the tiny base with two added tokens (mean-initialised), trained ``steps`` steps.

    ``train_new_tokens``: ``frozen`` (LoRA only: the new rows never train), ``trainable_tokens`` (peft
    trainable_token_indices) or ``modules_to_save``. Saves the adapter and its tokenizer to ``out``; the
    adapter names ``base_name`` as its base (default: the local base directory).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from recipes.train.tokens import add_tokens

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    model = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    info = add_tokens(model, tokenizer, NEW_TOKENS, [], "mean")
    ids = sorted(info["added_ids"].values())
    extra: dict[str, Any] = {}
    if train_new_tokens == "trainable_tokens":
        extra = {"trainable_token_indices": {"embed_tokens": ids}, "ensure_weight_tying": True}
    elif train_new_tokens == "modules_to_save":
        extra = {"modules_to_save": ["embed_tokens"], "ensure_weight_tying": True}
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], **extra))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    text = "### Response:\n<code> 13645005</code>"
    batch = tokenizer([text, text.replace("13645005", "42343007")], return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_name or str(BASE)
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return {"ids": ids, "base_vocab_size": info["base_vocab_size"]}
