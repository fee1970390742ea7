"""Batches of encoded code records: right-padding into tensors, and BERT-style masking for MLM.

``collate_codes`` pads what ``ehrdebug.codetok.encode_record`` returns (``input_ids`` with ``[PAD]``=0,
every other id stream with 0, ``attention_mask`` 0, ``special_tokens_mask`` 1 on padding) and drops the
per-record reports (``clamped``/``truncated``/``unknown``). ``mask_codes`` picks positions that are not
special and not padding with probability ``probability``, sets their ``labels`` (-100 elsewhere) and
replaces 80% with ``[MASK]``, 10% with a random *code* id (never a special one) and leaves 10% unchanged.
The model takes ``model_inputs(batch)``: the batch without ``special_tokens_mask``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.codetok import MASK_ID, MODEL_INPUT_KEYS, PAD_ID, SPECIAL_TOKENS
from ehrdebug.models.behrt import IGNORE_INDEX

_PADDED = (*MODEL_INPUT_KEYS, "special_tokens_mask", "labels")


def collate_codes(
    features: Sequence[Mapping[str, Any]], pad_to_multiple_of: int | None = None
) -> dict[str, Any]:
    """Right-pad a list of encoded records into long tensors; ``next_visit_labels``/``label`` are stacked."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    batch: dict[str, Any] = {}
    for key in _PADDED:
        if key not in features[0]:
            continue
        fill = {"input_ids": PAD_ID, "special_tokens_mask": 1, "labels": IGNORE_INDEX}.get(key, 0)
        rows = [list(f[key]) + [fill] * (width - len(f[key])) for f in features]
        batch[key] = torch.tensor(rows, dtype=torch.long)
    if "next_visit_labels" in features[0]:
        batch["next_visit_labels"] = torch.tensor(
            [f["next_visit_labels"] for f in features], dtype=torch.float
        )
    if "label" in features[0]:
        batch["label"] = torch.tensor([f["label"] for f in features])
    return batch


def mask_codes(
    batch: Mapping[str, Any],
    vocab_size: int,
    probability: float = 0.15,
    *,
    mask_share: float = 0.8,
    random_share: float = 0.1,
    generator: Any = None,
) -> dict[str, Any]:
    """A copy of ``batch`` with ``input_ids`` masked and ``labels`` set for masked-code modelling."""
    import torch

    ids = batch["input_ids"].clone()
    special = batch.get("special_tokens_mask")
    eligible = ids.ge(len(SPECIAL_TOKENS)) if special is None else special.eq(0) & ids.ne(PAD_ID)
    if "attention_mask" in batch:
        eligible &= batch["attention_mask"].bool()
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & eligible
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    roll = torch.rand(ids.shape, generator=generator)
    to_mask = chosen & (roll < mask_share)
    to_random = chosen & (roll >= mask_share) & (roll < mask_share + random_share)
    ids[to_mask] = MASK_ID
    if int(to_random.sum()) and vocab_size > len(SPECIAL_TOKENS):
        ids[to_random] = torch.randint(
            len(SPECIAL_TOKENS), vocab_size, (int(to_random.sum()),), generator=generator
        )
    out = dict(batch)
    out.update(input_ids=ids, labels=labels)
    return out


def encode_kwargs(config: Any) -> dict[str, Any]:
    """``encode_record`` keyword arguments that clamp every id stream into ``config``'s tables."""
    return {
        "max_age_ids": int(config.age_vocab_size),
        "max_position_ids": int(config.max_position_embeddings),
        "max_time_ids": int(getattr(config, "time_vocab_size", 0) or 0),
        "include_values": bool(getattr(config, "value_vocab_size", 0)),
        "max_value_ids": int(getattr(config, "value_vocab_size", 0) or 0),
    }


def model_inputs(batch: Mapping[str, Any], extra: Sequence[str] = ("labels",)) -> dict[str, Any]:
    """The keys a BEHRT-family forward takes: the id streams present, plus ``extra`` (labels) when present."""
    return {k: v for k, v in batch.items() if k in MODEL_INPUT_KEYS or k in extra}
