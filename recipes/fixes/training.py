"""Training-config fixes: stop at the validation best, clean the batches, tell T5 its task.

Seed 000 trained 30 epochs to loss 0.0004 (memorisation); seed 002 crashed the collator on string
columns, padded labels without -100, fed T5 inputs with no task prefix, and answered "True" for every
input after too short a run (train longer; lower the rate when the curve spikes or diverges).
"""

from __future__ import annotations

from typing import Any

from recipes.fixes.base import MISSING, Change, Fix, Target, get_key, set_key, setting

DEFAULT_PATIENCE = 2
DEFAULT_PREFIX = "medical diagnosis: "


EARLY_STOPPING = Fix(
    id="early-stopping",
    answers=("curves.overfitting", "curves.memorization"),
    summary="stop at the validation best (early stopping with patience) and keep that checkpoint",
    on_config=setting(
        "early_stopping.patience",
        DEFAULT_PATIENCE,
        "stop when validation loss has not improved for this many evaluations; keep the best checkpoint",
        when=lambda value: value in (MISSING, None, 0, False),
    ),  # fmt: skip
)
REMOVE_STRING_COLUMNS = Fix(
    id="remove-string-columns",
    answers=("data.collator", "collator.string_columns"),
    summary="remove non-tensor (string) columns before the collator sees the dataset",
    on_config=setting("drop_string_columns", True, "only tensor columns reach the collator"),
)
MASK_LABEL_PADDING = Fix(
    id="mask-label-padding",
    answers=("data.label_padding", "collator.label_padding", "generation.all_pad"),
    summary="replace pad ids in labels with -100 so padding carries no loss",
    on_config=setting("label_pad", -100, "padding positions carry no loss"),
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


def _longer_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    """Lift a step cap when one stopped the run; otherwise twice the epochs. Early stopping stays in charge."""
    changes: list[Change] = []
    if get_key(cfg, "max_steps"):
        set_key(
            cfg,
            "max_steps",
            None,
            changes,
            "the step cap stopped training before the model read its inputs; run the configured epochs",
        )
    else:
        epochs = int(get_key(cfg, "epochs") or 1)
        set_key(
            cfg,
            "epochs",
            epochs * 2,
            changes,
            "twice the epochs; early stopping still keeps the validation best",
        )
    if get_key(cfg, "max_minutes"):
        set_key(
            cfg, "max_minutes", float(get_key(cfg, "max_minutes")) * 2, changes, "and twice the time budget"
        )
    return changes


TRAIN_LONGER = Fix(
    id="train-longer",
    answers=(
        "curves.undertrained",
        "generation.degeneration",
        "generation.tf_vs_sampling",
        "model.special_token_probability",
    ),
    summary="train longer: lift a max_steps cap, else twice the epochs (early stopping keeps the best)",
    on_config=_longer_config,
)

LR_FACTOR = 3.0
MIN_WARMUP = 50


def _lower_lr_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    lr = get_key(cfg, "lr")
    if isinstance(lr, (int, float)):
        set_key(
            cfg,
            "lr",
            float(f"{lr / LR_FACTOR:.3g}"),
            changes,
            "a third of the rate that spiked, diverged or collapsed",
        )
    if int(get_key(cfg, "warmup_steps") or 0) < MIN_WARMUP:
        set_key(cfg, "warmup_steps", MIN_WARMUP, changes, "warm up before the full rate")
    if not get_key(cfg, "max_grad_norm"):
        set_key(cfg, "max_grad_norm", 1.0, changes, "clip gradients")
    return changes


LOWER_LEARNING_RATE = Fix(
    id="lower-learning-rate",
    answers=("curves.divergence", "curves.stalled", "curves.overfitting", "generation.degeneration"),
    summary="a third of the learning rate, at least 50 warmup steps and gradient clipping",
    on_config=_lower_lr_config,
)

FIXES = (
    EARLY_STOPPING,
    REMOVE_STRING_COLUMNS,
    MASK_LABEL_PADDING,
    ADD_TASK_PREFIX,
    TRAIN_LONGER,
    LOWER_LEARNING_RATE,
)
