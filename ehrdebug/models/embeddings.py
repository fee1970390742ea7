"""The embedding every EHR code model starts from: one table per id stream, summed, LayerNorm, dropout.

BEHRT adds code, age, visit-segment and visit-position embeddings; CEHR-BERT and EHRMamba add time and
numeric-value bins on the same pattern. A stream whose table size is 0 in the config has no table, and
passing ids for it is an error rather than silently ignored, so a collator that produces ``time_ids``
for a model without a time table is caught at the first batch.

Table sizes come from the config (``*_vocab_size`` / ``max_position_embeddings``); the ids are built by
``ehrdebug.codetok.encode_record``, which clamps them into those tables and counts what it clamped.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# input name -> (config attribute with the table size, submodule name)
STREAMS: dict[str, tuple[str, str]] = {
    "input_ids": ("vocab_size", "code_embed"),
    "age_ids": ("age_vocab_size", "age_embed"),
    "segment_ids": ("segment_vocab_size", "segment_embed"),
    "position_ids": ("max_position_embeddings", "position_embed"),
    "time_ids": ("time_vocab_size", "time_embed"),
    "value_ids": ("value_vocab_size", "value_embed"),
}


def table_sizes(config: Any, streams: dict[str, tuple[str, str]] = STREAMS) -> dict[str, int]:
    """``{input name: table size}`` for the streams this config has a table for (size > 0)."""
    return {
        name: int(getattr(config, attr, 0) or 0)
        for name, (attr, _) in streams.items()
        if getattr(config, attr, 0)
    }


class EhrEmbeddings(nn.Module):
    """Sum of the per-stream embeddings of each position, then LayerNorm and dropout.

    ``input_ids`` (or ``inputs_embeds``, the code vectors themselves) is required; every other stream is
    optional at call time (a missing one contributes nothing) but must have a table when given. Ids
    outside a table raise a ValueError naming the stream, its largest id and the table size: an index
    error deep inside ``nn.Embedding`` (or a silent wrap on some devices) says neither. A later
    architecture adds streams (token types, visit order) by subclassing with a larger ``streams``.
    """

    streams: dict[str, tuple[str, str]] = STREAMS

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.sizes = table_sizes(config, self.streams)
        pad = getattr(config, "pad_token_id", None)
        for name, size in self.sizes.items():
            module = self.streams[name][1]
            padding_idx = pad if name == "input_ids" and pad is not None and 0 <= pad < size else None
            setattr(self, module, nn.Embedding(size, config.hidden_size, padding_idx=padding_idx))
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.check_ids = bool(getattr(config, "check_embedding_ids", True))

    @property
    def code_embeddings(self) -> nn.Embedding:
        return self.code_embed

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **streams: torch.Tensor | None,
    ) -> torch.Tensor:
        """``inputs_embeds`` replaces the code embedding lookup (attribution, soft prompts); the rest still add."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        ids = {k: v for k, v in {"input_ids": input_ids, **streams}.items() if v is not None}
        total: torch.Tensor | None = inputs_embeds
        for name, value in ids.items():
            if name not in self.streams:
                raise TypeError(f"unknown embedding input {name!r} (known: {', '.join(self.streams)})")
            if name not in self.sizes:
                attr = self.streams[name][0]
                raise ValueError(f"{name} given but the config has no {name[:-4]} table ({attr}=0)")
            if self.check_ids:
                self._check_range(name, value)
            emb = getattr(self, self.streams[name][1])(value)
            total = emb if total is None else total + emb
        assert total is not None
        return self.dropout(self.LayerNorm(total))

    def _check_range(self, name: str, value: torch.Tensor) -> None:
        size = getattr(
            self, self.streams[name][1]
        ).num_embeddings  # the table as it is now (resizing changes it)
        if value.numel() and (int(value.max()) >= size or int(value.min()) < 0):
            raise ValueError(
                f"{name} out of range: ids {int(value.min())}..{int(value.max())} for a table of {size} "
                f"({self.streams[name][0]}={size})"
            )
