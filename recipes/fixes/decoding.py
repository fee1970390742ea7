"""Generation-time fixes: end on the dataset's end token, sample cooler, stop repeating.

In a config they edit ``generation.*``; on a checkpoint they edit its ``generation_config.json`` (a
copy of the checkpoint), which ``model.generate`` reads by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from recipes.fixes import surgery
from recipes.fixes.base import Change, Fix, Target, get_key, set_key

DEFAULT_END = "<END>"


def _end_token(target: Target, cfg: dict[str, Any] | None = None) -> str:
    cfg = cfg if cfg is not None else (target.config or {})
    end = get_key(cfg, "generation.eos")
    if isinstance(end, str) and end:
        return end
    from recipes.fixes.tokens import structural_tokens

    tokens = structural_tokens(target)
    ends = [t for t in tokens if t.strip("<>\\/").upper() in ("END", "EOS", "EOV")]
    return ends[0] if ends else DEFAULT_END


def _edit_generation_config(src: Path, dst: Path | None, edits: dict[str, Any], notes: dict[str, str] | None = None) -> list[Change]:
    path = src / "generation_config.json"
    current: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    changes: list[Change] = []
    for key, value in edits.items():
        if current.get(key) != value:
            changes.append(Change(f"generation_config.{key}", current.get(key), value, (notes or {}).get(key, "")))
            current[key] = value
    if dst is not None and changes:
        surgery.copy_checkpoint(src, dst)
        (dst / "generation_config.json").write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return changes


# -- block-pretrained-eos ---------------------------------------------------------------------------

def _block_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, "generation.eos", _end_token(target, cfg), changes, "generation ends on the dataset's end token")
    set_key(cfg, "generation.block_pretrained_eos", True, changes, "bad_words_ids = [[pretrained eos]]")
    return changes


def _block_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
    tokenizer = surgery.load_tokenizer(src)
    end = _end_token(target)
    end_id = tokenizer.convert_tokens_to_ids(end)
    if end_id is None or end_id == tokenizer.unk_token_id or len(tokenizer.encode(end, add_special_tokens=False)) != 1:
        from ehrdebug.errors import UserError

        raise UserError(f"{src}: the end token {end!r} is not one token; apply register-structural-tokens first")
    eos = tokenizer.eos_token_id
    edits: dict[str, Any] = {"eos_token_id": end_id, "forced_eos_token_id": None}
    notes = {"eos_token_id": f"{end} ends a sequence"}
    if eos is not None and eos != end_id:
        edits["bad_words_ids"] = [[int(eos)]]
        notes["bad_words_ids"] = f"the pretrained EOS {tokenizer.eos_token!r} can no longer be chosen"
    return _edit_generation_config(src, dst, edits, notes)


BLOCK_EOS = Fix(
    id="block-pretrained-eos",
    answers=("model.special_token_probability", "model.eos_dominance", "generation.early_eos"),
    summary="end generation on the dataset's end token and block the pretrained EOS with bad_words_ids",
    on_config=_block_config,
    on_checkpoint=_block_checkpoint,
)


# -- lower-temperature ----------------------------------------------------------------------------------

def _cooler(current: Any) -> float | None:
    try:
        value = float(current)
    except (TypeError, ValueError):
        return None
    return 1.0 if value > 1.0 else None


def _temp_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    wanted = _cooler(get_key(cfg, "generation.temperature"))
    if wanted is not None:
        set_key(cfg, "generation.temperature", wanted, changes, "sample from the learned distribution, not a flattened one")
    return changes


def _temp_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
    path = src / "generation_config.json"
    current = json.loads(path.read_text(encoding="utf-8")).get("temperature") if path.is_file() else None
    wanted = _cooler(current)
    return _edit_generation_config(src, dst, {"temperature": wanted}) if wanted is not None else []


LOWER_TEMPERATURE = Fix(
    id="lower-temperature",
    answers=("generation.temperature", "generation.structure"),
    summary="lower the sampling temperature (e.g. 1.3 -> 1.0) once the model is confident",
    on_config=_temp_config,
    on_checkpoint=_temp_checkpoint,
)


# -- anti-repetition-decoding ---------------------------------------------------------------------------

def decoding_settings(recipe: str) -> dict[str, Any]:
    """Seed 002's settings for free text. EHR sequences repeat ``<\\v> <v>`` by design, so n-gram
    blocking would forbid valid output there: only a mild repetition penalty and beams."""
    if recipe.startswith("bart_ehr") or "ehr" in recipe:
        return {"repetition_penalty": 1.3, "num_beams": 1}
    # n-gram size 2: no bigram twice, so no word (or multi-piece word) can come three times in a row
    return {"repetition_penalty": 2.0, "no_repeat_ngram_size": 2, "num_beams": 4, "do_sample": False}


def _rep_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    for key, value in decoding_settings(str(get_key(cfg, "recipe", ""))).items():
        current = get_key(cfg, f"generation.{key}")
        if key == "repetition_penalty" and isinstance(current, (int, float)) and current >= value:
            continue
        set_key(cfg, f"generation.{key}", value, changes)
    return changes


def _rep_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    recipe = "bart_ehr" if any("<v>" in str(t) for t in _added_tokens(src)) else str(config.get("model_type", ""))
    edits = decoding_settings(recipe)
    if edits.get("num_beams", 1) > 1:
        edits["early_stopping"] = True
    return _edit_generation_config(src, dst, edits)


def _added_tokens(src: Path) -> list[str]:
    path = src / "tokenizer.json"
    if not path.is_file():
        return []
    return [t.get("content", "") for t in json.loads(path.read_text(encoding="utf-8")).get("added_tokens", [])]


ANTI_REPETITION = Fix(
    id="anti-repetition-decoding",
    answers=("generation.repetition", "generation.constant_output"),
    summary="decode with repetition_penalty, no_repeat_ngram_size and beam search",
    on_config=_rep_config,
    on_checkpoint=_rep_checkpoint,
)

def _constrain_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    """T5 diagnosis: decode through a trie of the training split's diagnosis names (no near-miss spellings)."""
    recipe = get_key(cfg, "recipe")
    if recipe != "t5_diagnosis":
        raise UserError(f"constrain-to-labels applies to t5_diagnosis configs (this one trains {recipe!r})")
    changes: list[Change] = []
    set_key(cfg, "constrain_to_labels", True, changes, "every answer is spelled exactly as a training diagnosis")
    return changes


CONSTRAIN_TO_LABELS = Fix(
    id="constrain-to-labels",
    answers=("metrics.loss_vs_accuracy", "generation.tf_vs_sampling", "generation.degeneration"),
    summary="decode only the training split's answers (a token trie): no near-miss spellings, loops or echoes",
    on_config=_constrain_config,
)

FIXES = (BLOCK_EOS, LOWER_TEMPERATURE, ANTI_REPETITION, CONSTRAIN_TO_LABELS)
