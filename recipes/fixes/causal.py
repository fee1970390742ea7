"""Fixes for the causal-LM coding recipe (seed 003): train the answer in the format the metric parses, keep
the prompt out of the loss, use every sample each epoch.

Seed 003 reached a loss of 0.05 with 0% strict accuracy: its responses carried extra text around the codes,
every prompt token carried loss, and ``dataloader_drop_last`` silently dropped the tail of each epoch.
"""

from __future__ import annotations

from recipes.fixes.base import MISSING, Fix, setting

STRICT_TEMPLATE = "{answer}"

STRICT_OUTPUT_FORMAT = Fix(
    id="strict-output-format",
    answers=("metrics.loss_vs_accuracy",),
    summary="train (and parse) the exact output format the metric checks: the codes alone, no extra text",
    on_config=setting(
        "response_template",
        STRICT_TEMPLATE,
        "train the answer exactly as post-processing parses it: the formatted codes, no extra text",
        when=lambda value: value is not MISSING,
    ),  # fmt: skip
)
MASK_PROMPT_LOSS = Fix(
    id="mask-prompt-loss",
    answers=("data.prompt_loss", "data.collator"),
    summary="mask the prompt out of the loss (labels -100 before the response), keep EOS in it",
    on_config=setting("mask_prompt", True, "prompt tokens get label -100: the loss is the answer's"),
)
CHECK_DROP_LAST = Fix(
    id="check-drop-last",
    answers=("data.coverage",),
    summary="turn drop_last off so every sample is used each epoch (a small dataset loses a batch per epoch)",
    on_config=setting(
        "drop_last",
        False,
        "the last incomplete batch of each epoch is trained on too",
        when=lambda value: value is not MISSING and bool(value),
    ),  # fmt: skip
)

FIXES = (STRICT_OUTPUT_FORMAT, MASK_PROMPT_LOSS, CHECK_DROP_LAST)
