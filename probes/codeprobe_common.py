"""Shared helpers of the code-model probes: batches as numpy arrays, special ids read from a tokenizer.

Batches come from a user's collator as dicts of torch tensors, numpy arrays or nested lists; the
probes read them as integer arrays so one code path serves every source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def as_array(value: Any):
    """An integer/float numpy array from a tensor, an array or (nested) lists."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def batch_list(batches: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One batch or a list of them, as a list."""
    if isinstance(batches, Mapping):
        return [batches]
    return list(batches)


def special_ids_from_tokenizer(tokenizer: Any) -> dict[str, int]:
    """Every special token of a tokenizer (``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, ``[UNK]``, visit
    separators added as special tokens) by its text."""
    found: dict[str, int] = {}
    tokens: Iterable[str] = list(getattr(tokenizer, "all_special_tokens", []) or [])
    for token in tokens:
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid >= 0:
            found[str(token)] = tid
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for tid, token in added.items():
        if getattr(token, "special", False):
            found.setdefault(str(token), int(tid))
    return found


def rounded(value: float, digits: int = 4) -> float:
    return round(float(value), digits)
