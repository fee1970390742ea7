"""Fixes for the rows of added tokens: how they start, how they are warmed up, whether LoRA trains them.

Seed 000: ``resize_token_embeddings`` left the new rows random, ``<v>`` ended at p=0.000045 after
training, and the model fell back on pretrained subwords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.fixes import surgery
from recipes.fixes.base import Change, Fix, Target, get_key, set_key


def _new_ids(tokenizer: Any, target: Target) -> list[int]:
    configured = list(get_key(target.config or {}, "special_tokens") or [])
    ids = surgery.added_token_ids(tokenizer)
    if not ids and configured:
        ids = [i for i in surgery.added_token_ids(tokenizer, configured) if i >= surgery.base_vocab_size(tokenizer)]
    return ids


def _row_stats(model: Any, ids: list[int], pretrained: int) -> tuple[float, float]:
    """(mean distance of the new rows to the pretrained mean, typical distance of a pretrained row to it)."""
    weight = model.get_input_embeddings().weight.detach()
    mean = weight[:pretrained].mean(dim=0)
    new = (weight[ids] - mean).norm(dim=1).mean().item() if ids else 0.0
    old = (weight[:pretrained] - mean).norm(dim=1).mean().item()
    return round(float(new), 4), round(float(old), 4)


# -- init-new-embeddings-mean / -description ----------------------------------------------------------

def _init_config(value: str):
    def on_config(cfg: dict[str, Any], target: Target) -> list[Change]:
        changes: list[Change] = []
        set_key(cfg, "new_token_init", value, changes)
        return changes

    return on_config


def _init_checkpoint(how: str):
    def on_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
        tokenizer = surgery.load_tokenizer(src)
        ids = _new_ids(tokenizer, target)
        if not ids:
            return []
        model = surgery.load_model(src)
        pretrained = min(ids)
        before = _row_stats(model, ids, pretrained)
        tokens = tokenizer.convert_ids_to_tokens(ids)
        if how == "mean":
            surgery.init_rows_mean(model, ids, pretrained)
            note = "rows = mean of the pretrained rows"
        else:
            pieces = {i: surgery.pieces_without_added(tokenizer, tok, ids) for i, tok in zip(ids, tokens, strict=True)}
            surgery.init_rows_from(model, pieces, pretrained)
            note = "each row = mean of its own text pieces' rows"
        after = _row_stats(model, ids, pretrained)
        changes = [
            Change(f"embeddings[{', '.join(tokens[:6])}{', …' if len(tokens) > 6 else ''}]", f"{len(ids)} rows", f"{len(ids)} rows re-initialised", note),
            Change("distance of new rows to pretrained mean", before[0], after[0], f"a pretrained row sits at {before[1]}"),
        ]
        if dst is not None:
            surgery.save(model, tokenizer, src, dst)
        return changes

    return on_checkpoint


INIT_MEAN = Fix(
    id="init-new-embeddings-mean",
    answers=("model.new_embeddings", "model.special_token_probability"),
    summary="initialise added token embeddings to the mean of the pretrained rows instead of random noise",
    on_config=_init_config("mean"),
    on_checkpoint=_init_checkpoint("mean"),
)

INIT_DESCRIPTION = Fix(
    id="init-new-embeddings-description",
    answers=("model.new_embeddings", "model.special_token_probability"),
    summary="initialise each added token's embedding to the mean of the embeddings of its own text pieces",
    on_config=_init_config("description"),
    on_checkpoint=_init_checkpoint("description"),
)


MAX_WARMUP = 50  # a time-capped run (max_minutes) may do far fewer steps than epochs × batches

# -- warmup-new-embeddings ----------------------------------------------------------------------------

def estimated_steps(cfg: dict[str, Any], target: Target) -> int | None:
    """Optimizer steps of the configured run: ``max_steps``, else epochs × batches per epoch."""
    max_steps = get_key(cfg, "max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        return max_steps
    from recipes.fixes import datasource

    base = target.config_path.parent if target.config_path else target.path
    path = datasource.train_file(cfg, target.info, base)
    if path is None:
        return None
    from ehrdebug.io.tables import iter_records

    n = sum(1 for _ in iter_records(str(path)))
    cap = get_key(cfg, "data.max_train")
    if isinstance(cap, int) and cap > 0:
        n = min(n, cap)
    batch = int(get_key(cfg, "batch_size") or 8) * int(get_key(cfg, "grad_accum") or 1)
    epochs = float(get_key(cfg, "epochs") or 1)
    return max(1, int(epochs * -(-n // batch)))


def _warmup_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    current = int(get_key(cfg, "warmup_steps") or 0)
    total = estimated_steps(cfg, target)
    wanted = min(MAX_WARMUP, max(10, round(0.1 * total))) if total else MAX_WARMUP
    if current < wanted:
        note = f"10% of ~{total} steps, at most {MAX_WARMUP}" if total else "no step estimate; a common default"
        set_key(cfg, "warmup_steps", wanted, changes, note)
    return changes


WARMUP = Fix(
    id="warmup-new-embeddings",
    answers=("model.new_embeddings", "curves.instability"),
    summary="add learning-rate warmup so new embeddings settle before the full learning rate",
    on_config=_warmup_config,
)


# -- lora-train-embeddings ------------------------------------------------------------------------

def embedding_module_names(cfg: dict[str, Any]) -> list[str]:
    """Module names peft matches for the input embeddings and the output head of this recipe's model."""
    recipe = str(get_key(cfg, "recipe", ""))
    if recipe.startswith(("t5", "bart")):
        return ["shared", "lm_head"]
    return ["embed_tokens", "lm_head"]


def _lora_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    current = list(get_key(cfg, "lora.modules_to_save") or [])
    wanted = current + [m for m in embedding_module_names(cfg) if m not in current]
    set_key(cfg, "lora.modules_to_save", wanted, changes, "new token rows get gradients under LoRA")
    return changes


LORA_EMBEDDINGS = Fix(
    id="lora-train-embeddings",
    answers=("model.trainable",),
    summary="with LoRA and new tokens, make embeddings and lm_head trainable (modules_to_save)",
    on_config=_lora_config,
)

FIXES = (INIT_MEAN, INIT_DESCRIPTION, WARMUP, LORA_EMBEDDINGS)
