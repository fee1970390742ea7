"""Config fixes for the sequence models of seed 004 (EHRMamba; any causal-LM or pooled classifier task with
these keys): padding counted in the causal loss, a classifier head that pools a padding position.

Each edits the training config the next ``ehrdebug train`` reads. Which keys hold the settings is declared
once below (``KEYS``), in the EHRMamba tasks' schema (recipes/train/ehrmamba_tasks.py).
"""

from __future__ import annotations

from typing import Any

from ehrdebug.errors import UserError
from recipes.fixes.base import Change, Fix, Target, get_key, set_key

KEYS = {"mask_padding": "lm.mask_padding", "pooling": "model.pooling"}
_ABSENT = object()


def _require(cfg: dict[str, Any], name: str, what: str) -> str:
    key = KEYS[name]
    if get_key(cfg, key, _ABSENT) is _ABSENT:
        raise UserError(f"this config has no {key!r} key: the fix applies to {what}")
    return key


def _mask_padding(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    key = _require(cfg, "mask_padding", "the causal-LM pretraining recipes (ehrmamba_pretrain)")
    set_key(cfg, key, True, changes, "labels are -100 where attention_mask is 0: padding carries no loss")
    return changes


def _pool_last_token(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    key = KEYS["pooling"]
    if get_key(cfg, key, _ABSENT) is _ABSENT and not isinstance(cfg.get("model"), dict):
        raise UserError(f"this config has no {key!r} key: the fix applies to the EHRMamba classifier recipes")
    set_key(cfg, key, "last_token", changes, "the head reads the last non-padding state of each row")
    return changes


MASK_PADDING_IN_LOSS = Fix(
    id="mask-padding-in-loss",
    answers=("data.causal_labels",),
    summary="causal-LM labels -100 on padding (attention_mask 0), so padding predicting padding carries no loss",
    on_config=_mask_padding,
)
POOL_LAST_REAL_TOKEN = Fix(
    id="pool-last-real-token",
    answers=("model.pooling",),
    summary="the classifier pools the last non-padding token of each row, not the last position",
    on_config=_pool_last_token,
)

FIXES = (MASK_PADDING_IN_LOSS, POOL_LAST_REAL_TOKEN)
