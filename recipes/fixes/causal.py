"""Fixes for the causal-LM coding recipe (seed 003): train the answer in the format the metric parses, keep
the prompt out of the loss, use every sample each epoch.

Seed 003 reached a loss of 0.05 with 0% strict accuracy: its responses carried extra text around the codes,
every prompt token carried loss, and ``dataloader_drop_last`` silently dropped the tail of each epoch.
"""

from __future__ import annotations

from typing import Any

from recipes.fixes.base import Change, Fix, Target, get_key, set_key

STRICT_TEMPLATE = "{answer}"


def _strict_format_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    if "response_template" in cfg:
        set_key(
            cfg,
            "response_template",
            STRICT_TEMPLATE,
            changes,
            "train the answer exactly as post-processing parses it: the formatted codes, no extra text",
        )
    return changes


STRICT_OUTPUT_FORMAT = Fix(
    id="strict-output-format",
    answers=("metrics.loss_vs_accuracy",),
    summary="train (and parse) the exact output format the metric checks: the codes alone, no extra text",
    on_config=_strict_format_config,
)


def _mask_prompt_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, "mask_prompt", True, changes, "prompt tokens get label -100: the loss is the answer's")
    return changes


MASK_PROMPT_LOSS = Fix(
    id="mask-prompt-loss",
    answers=("data.prompt_loss", "data.collator"),
    summary="mask the prompt out of the loss (labels -100 before the response), keep EOS in it",
    on_config=_mask_prompt_config,
)


def _drop_last_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    if get_key(cfg, "drop_last"):
        set_key(cfg, "drop_last", False, changes, "the last incomplete batch of each epoch is trained on too")
    return changes


CHECK_DROP_LAST = Fix(
    id="check-drop-last",
    answers=("data.coverage",),
    summary="turn drop_last off so every sample is used each epoch (a small dataset loses a batch per epoch)",
    on_config=_drop_last_config,
)

FIXES = (STRICT_OUTPUT_FORMAT, MASK_PROMPT_LOSS, CHECK_DROP_LAST)
