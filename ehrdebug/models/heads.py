"""The loss and dropout code the EHR heads share (BEHRT, CEHR-BERT, EHRMamba), written once.

Each head keeps its own pooling and output class; what was repeated is here: the classifier dropout
(``classifier_dropout``, else the hidden dropout), the binary/multi-class outcome loss (``num_labels == 1``:
one logit with BCE; 2 or more: cross-entropy) and the masked-LM loss (cross-entropy skipping -100 labels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

IGNORE_INDEX = -100


def classifier_dropout(config: Any) -> nn.Dropout:
    """Dropout before a classifier: ``config.classifier_dropout`` when set, else ``hidden_dropout_prob``."""
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return nn.Dropout(p)


def outcome_loss(logits: torch.Tensor, labels: torch.Tensor | None, num_labels: int) -> torch.Tensor | None:
    """BCE with logits for one logit per row (0/1 labels), cross-entropy over ``num_labels`` classes otherwise."""
    if labels is None:
        return None
    if num_labels == 1:
        return nn.functional.binary_cross_entropy_with_logits(
            logits.view(-1), labels.view(-1).to(logits.dtype)
        )
    return nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1).long())


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy over the vocabulary at the labelled positions (-100 elsewhere)."""
    if labels is None:
        return None
    return nn.functional.cross_entropy(
        logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=IGNORE_INDEX
    )
