"""Training-config fixes: stop at the validation best, clean the batches, tell T5 its task.

Seed 000 trained 30 epochs to loss 0.0004 (memorisation); seed 002 crashed the collator on string
columns, padded labels without -100, and fed T5 inputs with no task prefix.
"""

from __future__ import annotations

from typing import Any

from recipes.fixes.base import Change, Fix, Target, get_key, set_key

DEFAULT_PATIENCE = 2
DEFAULT_PREFIX = "medical diagnosis: "


def _early_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    if get_key(cfg, "early_stopping.patience") in (None, 0, False):
        set_key(cfg, "early_stopping.patience", DEFAULT_PATIENCE, changes,
                "stop when validation loss has not improved for this many evaluations; keep the best checkpoint")
    return changes


EARLY_STOPPING = Fix(
    id="early-stopping",
    answers=("curves.overfitting", "curves.memorization"),
    summary="stop at the validation best (early stopping with patience) and keep that checkpoint",
    on_config=_early_config,
)


def _strings_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, "drop_string_columns", True, changes, "only tensor columns reach the collator")
    return changes


REMOVE_STRING_COLUMNS = Fix(
    id="remove-string-columns",
    answers=("data.collator", "collator.string_columns"),
    summary="remove non-tensor (string) columns before the collator sees the dataset",
    on_config=_strings_config,
)


def _labels_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, "label_pad", -100, changes, "padding positions carry no loss")
    return changes


MASK_LABEL_PADDING = Fix(
    id="mask-label-padding",
    answers=("data.label_padding", "collator.label_padding", "generation.all_pad"),
    summary="replace pad ids in labels with -100 so padding carries no loss",
    on_config=_labels_config,
)


def _prefix_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    prefix = get_key(cfg, "task_prefix") or DEFAULT_PREFIX
    set_key(cfg, "task_prefix", prefix, changes, "every training input starts with the task prefix")
    if "inference_prefix" in cfg or get_key(cfg, "inference_prefix") is not None:
        set_key(cfg, "inference_prefix", prefix, changes, "and so does every inference input")
    return changes


ADD_TASK_PREFIX = Fix(
    id="add-task-prefix",
    answers=("model.task_prefix",),
    summary="prefix every T5 input with the task prefix, at training and at inference",
    on_config=_prefix_config,
)

FIXES = (EARLY_STOPPING, REMOVE_STRING_COLUMNS, MASK_LABEL_PADDING, ADD_TASK_PREFIX)
