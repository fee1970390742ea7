"""CEHR-BERT (Pang et al. 2021): a BERT encoder over CEHR embeddings; ``attention: bigbird`` makes it BigBird.

One file in the manner of transformers' model files: config, base model, masked-LM head and classification
head. The encoder is transformers' own ``BertEncoder`` (eager/sdpa attention, gradient checkpointing) or, with
``attention="bigbird"``, its ``BigBirdEncoder`` with block-sparse attention (global + sliding + random blocks,
linear in length) — the baseline EHRMamba and seed 004 compare against. Like transformers' ``BigBirdModel``, a
sequence too short for block-sparse attention (at most ``(5 + 2·num_random_blocks)·block_size`` tokens) runs
full attention through the same weights; a longer one is right-padded to a multiple of ``block_size``.

Inputs (``cehr_inputs.encode_cehr``/``collate_cehr``): ``input_ids``, ``attention_mask``, ``token_type_ids``,
``segment_ids``, ``position_ids`` (visit order), ``time_values``, ``age_values`` and optional ``value_ids``.
There is no token-position table: within a visit codes are a set, as in CEHR-BERT; order comes from visit
order, time and age.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import (
    BertEncoder,
    BertLMPredictionHead,
    BertOnlyMLMHead,
    BertPooler,
)
from transformers.utils.generic import can_return_tuple

from ehrdebug.models.cehr_embeddings import CehrEmbeddings, init_cehr_weights, stream_inputs
from ehrdebug.models.heads import classifier_dropout, masked_lm_loss, outcome_loss

IGNORE_INDEX = -100
ATTENTIONS = ("full", "bigbird")

# Parameter counts at the shipped vocabulary are in tests/test_models_cehrbert.py and the report.
TIERS: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 384,
              "max_position_embeddings": 512, "max_visits": 64},
    "medium": {"hidden_size": 256, "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 1024,
               "max_position_embeddings": 1024, "max_visits": 256},
    "large": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
              "max_position_embeddings": 2048, "max_visits": 512},
}  # fmt: skip


class CehrBertConfig(PreTrainedConfig):
    """CEHR-BERT's sizes; ``attention`` is ``"full"`` (BERT) or ``"bigbird"`` (block-sparse, ``block_size``,
    ``num_random_blocks``). ``max_position_embeddings`` is the longest sequence the model takes (BigBird's
    random-block plan needs it); ``max_visits`` the rows of the visit-order table. ``num_labels == 1``: one
    logit with BCE."""

    model_type: ClassVar[str] = "cehrbert"

    vocab_size: int = 256
    hidden_size: int = 96
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    time_embedding_size: int = 16
    max_visits: int = 64
    segment_vocab_size: int = 3
    type_vocab_size: int = 7
    value_vocab_size: int = 0
    time_delta: bool = True
    attention: str = "full"
    attention_type: str = "original_full"  # derived from ``attention`` (what BigBird's modules read)
    block_size: int = 16
    num_random_blocks: int = 2
    use_bias: bool = True
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | None = None
    is_decoder: bool = False
    add_cross_attention: bool = False
    tie_word_embeddings: bool = True
    check_embedding_ids: bool = True
    tier_name: str | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, not {self.attention!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        self.attention_type = "block_sparse" if self.attention == "bigbird" else "original_full"

    @classmethod
    def tier(cls, name: str, **overrides: Any) -> CehrBertConfig:
        """A size preset (``small``: laptop CPU, ``medium``, ``large``: an A40) with ``overrides`` on top."""
        if name not in TIERS:
            raise ValueError(f"unknown CEHR-BERT tier {name!r} (tiers: {', '.join(TIERS)})")
        return cls(**{**TIERS[name], "tier_name": name, **overrides})

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, tier: str = "small", **overrides: Any) -> CehrBertConfig:
        """A tier sized to a CEHR tokenizer (``cehr_inputs.cehr_tokenizer``): its vocabulary and pad id."""
        return cls.tier(
            tier, **{"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, **overrides}
        )


class CehrBertPreTrainedModel(PreTrainedModel):
    config: CehrBertConfig
    config_class = CehrBertConfig
    base_model_prefix = "cehrbert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["CehrEmbeddings", "BertLayer", "BigBirdLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        init_cehr_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)


class CehrBertModel(CehrBertPreTrainedModel):
    """CEHR embeddings → BERT (or BigBird) encoder → optional [CLS] pooler."""

    def __init__(self, config: CehrBertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = CehrEmbeddings(config)
        if config.attention == "bigbird":
            from transformers.models.big_bird.modeling_big_bird import BigBirdEncoder

            self.encoder = BigBirdEncoder(config)
        else:
            self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.code_embed

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.code_embed = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        embedded = self.embeddings(input_ids, inputs_embeds=inputs_embeds, **stream_inputs(kwargs))
        if attention_mask is None:
            attention_mask = torch.ones(embedded.shape[:2], dtype=torch.long, device=embedded.device)
        if self.config.attention == "bigbird":
            hidden = self._bigbird(embedded, attention_mask)
        else:
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=embedded, attention_mask=attention_mask
            )
            hidden = self.encoder(embedded, attention_mask=mask).last_hidden_state
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)

    def sparse_applies(self, length: int) -> bool:
        """Whether a sequence of ``length`` tokens runs block-sparse (else full attention, as BigBirdModel does)."""
        c = self.config
        return length > (5 + 2 * c.num_random_blocks) * c.block_size

    def _bigbird(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        from transformers.models.big_bird.modeling_big_bird import BigBirdModel

        length, block = embedded.size(1), int(self.config.block_size)
        if not self.sparse_applies(length):
            self.encoder.set_attention_type("original_full")
            additive = (1.0 - attention_mask[:, None, None, :].to(embedded.dtype)) * torch.finfo(
                embedded.dtype
            ).min
            return self.encoder(embedded, attention_mask=additive).last_hidden_state
        pad = (-length) % block
        if length + pad > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence of {length} tokens is longer than max_position_embeddings={self.config.max_position_embeddings}"
            )
        self.encoder.set_attention_type("block_sparse")
        hidden = nn.functional.pad(embedded, (0, 0, 0, pad))
        mask = nn.functional.pad(attention_mask, (0, pad)).to(embedded.dtype)
        blocked, band, from_mask, to_mask = BigBirdModel.create_masks_for_block_sparse_attn(mask, block)
        out = self.encoder(
            hidden, band_mask=band, from_mask=from_mask, to_mask=to_mask, blocked_encoder_mask=blocked
        )
        return out.last_hidden_state[:, :length]


class CehrBertForMaskedLM(CehrBertPreTrainedModel):
    """Masked-concept prediction; the decoder is tied to the concept embedding unless ``tie_word_embeddings=False``."""

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "cehrbert.embeddings.code_embed.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: CehrBertConfig) -> None:
        super().__init__(config)
        self.cehrbert = CehrBertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs: Any
    ) -> MaskedLMOutput:
        out = self.cehrbert(input_ids, **{k: v for k, v in inputs.items() if v is not None})
        logits = self.cls(out.last_hidden_state)
        return MaskedLMOutput(loss=masked_lm_loss(logits, labels), logits=logits)


class CehrBertForSequenceClassification(CehrBertPreTrainedModel):
    """Pooled [CLS] → dropout → linear: binary (``num_labels=1``, BCE) or multi-class (cross-entropy)."""

    def __init__(self, config: CehrBertConfig) -> None:
        super().__init__(config)
        self.cehrbert = CehrBertModel(config)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs: Any
    ) -> SequenceClassifierOutput:
        out = self.cehrbert(input_ids, **{k: v for k, v in inputs.items() if v is not None})
        logits = self.classifier(self.dropout(out.pooler_output))
        return SequenceClassifierOutput(
            loss=outcome_loss(logits, labels, self.config.num_labels), logits=logits
        )


HEADS: dict[str, type[CehrBertPreTrainedModel]] = {
    "base": CehrBertModel,
    "mlm": CehrBertForMaskedLM,
    "classification": CehrBertForSequenceClassification,
}
AUTO: dict[str, type[CehrBertPreTrainedModel]] = {
    "AutoModel": CehrBertModel,
    "AutoModelForMaskedLM": CehrBertForMaskedLM,
    "AutoModelForSequenceClassification": CehrBertForSequenceClassification,
}
