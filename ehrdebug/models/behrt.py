"""BEHRT (Li et al. 2020): summed code + age + visit-segment + visit-position embeddings over a BERT encoder.

One file in the manner of transformers' model files: the config, the pre-trained base, the encoder and
three heads (masked LM, next-visit multi-label, sequence classification). The encoder, pooler and MLM
head are transformers' own BERT modules, so attention implementations (eager/sdpa), gradient
checkpointing, output capture, safetensors and PEFT behave exactly as they do for ``BertModel``.

Inputs (built by ``ehrdebug.codetok.encode_record``): ``input_ids`` (codes, word-level), ``attention_mask``,
``age_ids``, ``segment_ids`` (0/1 alternating per visit), ``position_ids`` (visit index + 1; 0 for ``[CLS]``
and padding) and, when the config has the tables, ``time_ids`` and ``value_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import (
    BertEncoder,
    BertLayer,
    BertLMPredictionHead,
    BertOnlyMLMHead,
    BertPooler,
    BertSelfAttention,
)
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from ehrdebug.models.embeddings import EhrEmbeddings
from ehrdebug.models.heads import classifier_dropout, masked_lm_loss, outcome_loss

IGNORE_INDEX = -100  # the MLM loss skips these label positions (BEHRT's original code used -1)

# Measured at the shipped vocabulary (see tests/test_models_behrt.py): ~0.5 M / ~3 M / ~15 M parameters.
TIERS: dict[str, dict[str, int]] = {
    "small": {
        "hidden_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 384,
        "max_position_embeddings": 128,
    },
    "medium": {
        "hidden_size": 192,
        "num_hidden_layers": 6,
        "num_attention_heads": 6,
        "intermediate_size": 768,
        "max_position_embeddings": 256,
    },
    "large": {
        "hidden_size": 384,
        "num_hidden_layers": 8,
        "num_attention_heads": 6,
        "intermediate_size": 1536,
        "max_position_embeddings": 512,
    },
}


class BehrtConfig(PreTrainedConfig):
    """BEHRT's sizes: one vocabulary size per embedding table plus the BERT encoder's.

    ``time_vocab_size``/``value_vocab_size`` of 0 mean no such table. ``num_next_visit_labels`` defaults
    to ``vocab_size`` (the next-visit head predicts over the code vocabulary, special ids included and
    never positive). ``num_labels == 1`` makes the classifier a single logit with BCE (binary); 2 or more
    use cross-entropy over classes.
    """

    model_type: ClassVar[str] = "behrt"

    vocab_size: int = 256
    hidden_size: int = 96
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 384
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 128
    age_vocab_size: int = 120
    segment_vocab_size: int = 2
    time_vocab_size: int = 0
    value_vocab_size: int = 0
    num_next_visit_labels: int | None = None
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
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if self.num_next_visit_labels is None:
            self.num_next_visit_labels = self.vocab_size

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, tier: str = "small", **overrides: Any) -> BehrtConfig:
        """A tier sized to a code tokenizer: its vocabulary, pad id and (when it bins values) a value table."""
        from ehrdebug.codetok import num_value_bins

        bins = num_value_bins(tokenizer)
        sized = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "value_vocab_size": bins + 1 if bins else 0,
        }
        return cls.tier(tier, **{**sized, **overrides})

    @classmethod
    def tier(cls, name: str, **overrides: Any) -> BehrtConfig:
        """A size preset (``small``: laptop CPU, ``medium``, ``large``: an A40) with ``overrides`` on top."""
        if name not in TIERS:
            raise ValueError(f"unknown BEHRT tier {name!r} (tiers: {', '.join(TIERS)})")
        return cls(**{**TIERS[name], "tier_name": name, **overrides})


class BehrtPreTrainedModel(PreTrainedModel):
    config: BehrtConfig
    config_class = BehrtConfig
    base_model_prefix = "behrt"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["EhrEmbeddings", "BertLayer"]
    _can_record_outputs = {"hidden_states": BertLayer, "attentions": BertSelfAttention}

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)


class BehrtModel(BehrtPreTrainedModel):
    """Embeddings → BERT encoder → (optional) [CLS] pooler; returns ``BaseModelOutputWithPooling``."""

    def __init__(self, config: BehrtConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = EhrEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.code_embed

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.code_embed = value

    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        age_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
        value_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        embedded = self.embeddings(
            input_ids,
            inputs_embeds=inputs_embeds,
            age_ids=age_ids,
            segment_ids=segment_ids,
            position_ids=position_ids,
            time_ids=time_ids,
            value_ids=value_ids,
        )
        mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=embedded, attention_mask=attention_mask
        )
        unknown = set(kwargs) - _PASSED_ON
        if unknown:  # a misspelt id stream (or a collator's leftover) must not be dropped without a word
            raise TypeError(
                f"{type(self).__name__}.forward got unexpected inputs: {', '.join(sorted(unknown))}"
            )
        hidden = self.encoder(embedded, attention_mask=mask, **kwargs).last_hidden_state
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


_PASSED_ON = {"output_attentions", "output_hidden_states", "num_items_in_batch"}  # transformers' own kwargs


def _base_inputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


class BehrtForMaskedLM(BehrtPreTrainedModel):
    """Masked-code prediction; the decoder is tied to the code embedding unless ``tie_word_embeddings=False``."""

    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "behrt.embeddings.code_embed.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BehrtConfig) -> None:
        super().__init__(config)
        self.behrt = BehrtModel(config, add_pooling_layer=False)
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
        out = self.behrt(input_ids, return_dict=True, **_base_inputs(inputs))
        logits = self.cls(out.last_hidden_state)
        return MaskedLMOutput(
            loss=masked_lm_loss(logits, labels),
            logits=logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


@dataclass
class NextVisitOutput(ModelOutput):
    """``logits``: one score per code of the vocabulary (sigmoid → probability it occurs in the next visit)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class _PooledHead(BehrtPreTrainedModel):
    """Pooled [CLS] → dropout → linear; subclasses set the output width and the loss."""

    def __init__(self, config: BehrtConfig, width: int) -> None:
        super().__init__(config)
        self.behrt = BehrtModel(config)
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, width)
        self.post_init()

    def _logits(self, input_ids: torch.Tensor | None, inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        out = self.behrt(input_ids, return_dict=True, **_base_inputs(inputs))
        return self.classifier(self.dropout(out.pooler_output)), out


class BehrtForNextVisit(_PooledHead):
    """Which codes occur in the next visit: multi-label over the code vocabulary, BCE with logits.

    ``labels`` is a float multi-hot ``(batch, num_next_visit_labels)`` (``codetok.next_visit_labels``).
    """

    def __init__(self, config: BehrtConfig) -> None:
        super().__init__(config, int(config.num_next_visit_labels or config.vocab_size))

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs: Any
    ) -> NextVisitOutput:
        logits, out = self._logits(input_ids, inputs)
        loss = None
        if labels is not None:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return NextVisitOutput(
            loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions
        )


class BehrtForSequenceClassification(_PooledHead):
    """Binary (``num_labels=1``: one logit, BCE) or multi-class (``num_labels>=2``: cross-entropy) outcome."""

    def __init__(self, config: BehrtConfig) -> None:
        super().__init__(config, config.num_labels)

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs: Any
    ) -> SequenceClassifierOutput:
        logits, out = self._logits(input_ids, inputs)
        return SequenceClassifierOutput(
            loss=outcome_loss(logits, labels, self.config.num_labels),
            logits=logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


HEADS: dict[str, type[BehrtPreTrainedModel]] = {
    "base": BehrtModel,
    "mlm": BehrtForMaskedLM,
    "next_visit": BehrtForNextVisit,
    "classification": BehrtForSequenceClassification,
}
AUTO: dict[str, type[BehrtPreTrainedModel]] = {
    "AutoModel": BehrtModel,
    "AutoModelForMaskedLM": BehrtForMaskedLM,
    "AutoModelForSequenceClassification": BehrtForSequenceClassification,
}
