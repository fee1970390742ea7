"""The CEHR embedding CEHR-BERT and EHRMamba share: concept + time + age fused, plus visit and token-type tables.

CEHR-BERT's recipe (and EHRMamba's after it): the concept vector is concatenated with *learned sinusoidal*
features of the time and of the age (``sin(t·w + φ)`` with ``w``, ``φ`` trained, so the model picks its own
frequencies instead of a fixed positional table), projected back to the hidden width through ``tanh``, and
then the discrete streams are added: token type (code / visit start / visit end / time token / class /
task, ``cehr_inputs.TOKEN_TYPES``), visit segment (1/2 alternating), visit order and, when the tokenizer
bins numeric values, the value bin. The discrete sum, its LayerNorm and dropout are the shared
``ehrdebug.models.embeddings.EhrEmbeddings`` (same id-range checks as BEHRT): the fused code vector enters it
as ``inputs_embeds``.

Time is the gap in days since the previous token (``time_delta``, odyssey's choice: bounded and shift-free)
or the days since the first event; age is in years. The inputs come from ``cehr_inputs.encode_cehr``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ehrdebug.models.embeddings import EhrEmbeddings

#: the config attributes a CEHR embedding reads (both model configs define them)
CEHR_EMBEDDING_DEFAULTS: dict[str, Any] = {
    "time_embedding_size": 16,
    "max_visits": 64,
    "segment_vocab_size": 3,
    "type_vocab_size": 7,
    "value_vocab_size": 0,
    "time_delta": True,
}


class SinusoidalFeatures(nn.Module):
    """``sin(x·w + φ)`` with learned frequencies ``w`` and phases ``φ``: a continuous value → ``size`` features."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(1, size))
        self.phi = nn.Parameter(torch.empty(1, size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.w)
        nn.init.xavier_uniform_(self.phi)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sin(values.float().unsqueeze(-1) * self.w + self.phi)


class CehrEmbeddings(nn.Module):
    """Fused concept/time/age vector + token-type embedding, then the shared visit/value tables, LayerNorm, dropout."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        hidden, width = int(config.hidden_size), int(config.time_embedding_size)
        pad = getattr(config, "pad_token_id", None)
        vocab = int(config.vocab_size)
        self.time_delta = bool(config.time_delta)
        self.code_embed = nn.Embedding(
            vocab,
            hidden,
            padding_idx=pad if pad is not None and 0 <= pad < vocab else None,
        )
        self.time_features = SinusoidalFeatures(width)
        self.age_features = SinusoidalFeatures(width)
        self.fuse = nn.Linear(hidden + 2 * width, hidden)
        self.token_type_embed = nn.Embedding(int(config.type_vocab_size), hidden)
        tables = SimpleNamespace(
            hidden_size=hidden,
            layer_norm_eps=float(config.layer_norm_eps),
            hidden_dropout_prob=float(config.hidden_dropout_prob),
            segment_vocab_size=int(config.segment_vocab_size),
            max_position_embeddings=int(config.max_visits),
            value_vocab_size=int(config.value_vocab_size or 0),
            check_embedding_ids=bool(getattr(config, "check_embedding_ids", True)),
        )
        self.visits = EhrEmbeddings(tables)  # segment_ids, position_ids (visit order), value_ids

    @property
    def vocab_size(self) -> int:
        """Rows of the concept table as it is now (``resize_token_embeddings`` replaces it for new task tokens)."""
        return int(self.code_embed.num_embeddings)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        time_values: torch.Tensor | None = None,
        age_values: torch.Tensor | None = None,
        value_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``inputs_embeds`` replaces the concept lookup (attribution); time, age and the tables still apply."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            if input_ids.numel() and (int(input_ids.max()) >= self.vocab_size or int(input_ids.min()) < 0):
                raise ValueError(
                    f"input_ids out of range: ids {int(input_ids.min())}..{int(input_ids.max())} for a vocabulary of {self.vocab_size}"
                )
            inputs_embeds = self.code_embed(input_ids)
        assert inputs_embeds is not None
        shape = inputs_embeds.shape[:-1]
        zeros = inputs_embeds.new_zeros(shape)
        time = zeros if time_values is None else time_values.to(inputs_embeds.device)
        if self.time_delta:
            time = torch.cat([time[:, :1] * 0, (time[:, 1:] - time[:, :-1]).clamp(min=0)], dim=1)
        age = zeros if age_values is None else age_values.to(inputs_embeds.device)
        fused = torch.cat(
            [
                inputs_embeds,
                self.time_features(time).to(inputs_embeds.dtype),
                self.age_features(age).to(inputs_embeds.dtype),
            ],
            dim=-1,
        )
        fused = torch.tanh(self.fuse(fused))
        if token_type_ids is not None:
            fused = fused + self.token_type_embed(token_type_ids)
        return self.visits(
            inputs_embeds=fused, segment_ids=segment_ids, position_ids=position_ids, value_ids=value_ids
        )


#: the forward inputs a CEHR model takes besides ``input_ids``/``attention_mask``/``labels``
CEHR_STREAMS = ("token_type_ids", "segment_ids", "position_ids", "time_values", "age_values", "value_ids")


def stream_inputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The CEHR streams present in ``kwargs`` (``None`` left out)."""
    return {k: kwargs[k] for k in CEHR_STREAMS if kwargs.get(k) is not None}


def init_cehr_weights(module: nn.Module) -> None:
    """What ``PreTrainedModel._init_weights`` does not cover: the sinusoid parameters (Xavier, as CEHR-BERT)."""
    from transformers import initialization as init

    if isinstance(module, SinusoidalFeatures):
        init.xavier_uniform_(module.w)
        init.xavier_uniform_(module.phi)
