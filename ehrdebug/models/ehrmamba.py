"""EHRMamba (Fallahpour et al. 2024): transformers' Mamba or Mamba2 backbone fed CEHR embeddings.

The backbone is transformers' own ``MambaModel``/``Mamba2Model`` (``backbone`` config key) called with
``inputs_embeds`` from ``CehrEmbeddings``, so transformers picks the execution path: the fused mamba-ssm /
causal-conv1d kernels on CUDA when they import, the pure-PyTorch scan anywhere else
(``probes.runtime.mamba_fast_path`` says which and what it costs). Without the kernels, Mamba (v1)
uses mambapy's parallel scan (``use_mambapy``, a dependency) instead of transformers' per-token Python loop,
whose backward pass is tens of times slower (measured: 0.7 s against 32 s per step at 1,024 tokens, CPU). The backbone's own token table is
never used and is built with one row, so it adds no parameters and no unused gradients (DDP).

Padding: Mamba has no attention over the batch. Batches are RIGHT-padded (``cehr_inputs.collate_cehr``), so
a row's real tokens come before its padding and a causal scan never sees padding when computing them;
transformers additionally zeroes padded states with ``attention_mask``. The causal-LM loss skips labels
of -100, which ``cehr_inputs.causal_lm_labels`` puts on padding. The classifier pools the LAST NON-PADDING
token (``cehr_inputs.last_token_index``), not the last position, which on a right-padded row is padding.

Multitask prompted fine-tuning (the paper's MPF): each sequence starts with a task token (``[MOR]``,
``[LOS]``, ``[REA]``…; ``config.task_token_ids``), several binary tasks are trained in one model, and
the task of a row is read from its first token (or given as ``task_ids``). ``task_heads="per_task"``
gives one linear head per task (odyssey's multi-head option); ``"shared"`` one head, the task token
conditioning the state it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from ehrdebug.models.cehr_embeddings import CehrEmbeddings, init_cehr_weights, stream_inputs
from ehrdebug.models.cehr_inputs import last_token_index
from ehrdebug.models.heads import classifier_dropout, outcome_loss

IGNORE_INDEX = -100
BACKBONES = ("mamba", "mamba2")
TASK_HEADS = ("per_task", "shared")
POOLINGS = ("last_token", "last_position")

# large: seed 004's EHRMamba (24 layers, hidden 1024, state 16). Counts: tests and the report.
TIERS: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 64, "num_hidden_layers": 4, "state_size": 16, "max_visits": 64},
    "medium": {"hidden_size": 256, "num_hidden_layers": 8, "state_size": 16, "max_visits": 256},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "state_size": 16, "max_visits": 512},
}


class EhrMambaConfig(PreTrainedConfig):
    """EHRMamba's sizes, the CEHR embedding's, and MPF's task tokens.

    ``backbone``: ``"mamba"`` or ``"mamba2"`` (``head_dim``, ``n_groups``, ``chunk_size`` apply to Mamba2).
    ``task_token_ids``: vocabulary ids of the task tokens, in task order (empty: one task).
    ``num_labels == 1`` per task: one logit with BCE.
    """

    model_type: ClassVar[str] = "ehrmamba"

    vocab_size: int = 256
    hidden_size: int = 96
    num_hidden_layers: int = 4
    state_size: int = 16
    expand: int = 2
    conv_kernel: int = 4
    backbone: str = "mamba"
    head_dim: int = 32
    n_groups: int = 1
    chunk_size: int = 256
    time_embedding_size: int = 16
    max_visits: int = 64
    segment_vocab_size: int = 3
    type_vocab_size: int = 7
    value_vocab_size: int = 0
    time_delta: bool = True
    hidden_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    task_token_ids: list[int] | None = None
    task_heads: str = "per_task"
    pooling: str = (
        "last_token"  # "last_position" pools whatever is last, padding included (a failure to reproduce)
    )
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True
    check_embedding_ids: bool = True
    use_mambapy: bool = (
        True  # without the CUDA kernels: mambapy's parallel scan (when installed), not the per-token loop
    )
    tier_name: str | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, not {self.backbone!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.task_heads not in TASK_HEADS:
            raise ValueError(f"task_heads must be one of {', '.join(TASK_HEADS)}, not {self.task_heads!r}")
        if self.backbone == "mamba2" and (self.expand * self.hidden_size) % self.head_dim:
            raise ValueError(
                f"mamba2: expand*hidden_size {self.expand * self.hidden_size} is not a multiple of head_dim {self.head_dim}"
            )
        self.task_token_ids = [int(t) for t in (self.task_token_ids or [])]

    @property
    def num_tasks(self) -> int:
        return max(1, len(self.task_token_ids or []))

    def backbone_config(self) -> Any:
        """The transformers ``MambaConfig``/``Mamba2Config`` of the backbone (vocabulary of 1: inputs_embeds only)."""
        from transformers import Mamba2Config, MambaConfig

        shared = {"hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers, "state_size": self.state_size,
                  "expand": self.expand, "conv_kernel": self.conv_kernel, "layer_norm_epsilon": self.layer_norm_epsilon,
                  "vocab_size": 1, "pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0, "use_cache": False,
                  "tie_word_embeddings": False}  # fmt: skip
        if self.backbone == "mamba2":
            return Mamba2Config(**shared, head_dim=self.head_dim, num_heads=self.expand * self.hidden_size // self.head_dim,
                                n_groups=self.n_groups, chunk_size=self.chunk_size)  # fmt: skip
        return MambaConfig(**shared, use_mambapy=self.use_mambapy)

    @classmethod
    def tier(cls, name: str, **overrides: Any) -> EhrMambaConfig:
        """A size preset (``small``: laptop CPU, ``medium``, ``large``: seed 004's A40-class model)."""
        if name not in TIERS:
            raise ValueError(f"unknown EHRMamba tier {name!r} (tiers: {', '.join(TIERS)})")
        return cls(**{**TIERS[name], "tier_name": name, **overrides})

    @classmethod
    def for_tokenizer(
        cls, tokenizer: Any, tier: str = "small", task_tokens: tuple[str, ...] = (), **overrides: Any
    ) -> EhrMambaConfig:
        """A tier sized to a CEHR tokenizer; ``task_tokens`` (in task order) become ``task_token_ids``."""
        ids = [int(tokenizer.convert_tokens_to_ids(t)) for t in task_tokens]
        return cls.tier(tier, **{"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                                 "task_token_ids": ids, **overrides})  # fmt: skip


class EhrMambaPreTrainedModel(PreTrainedModel):
    config: EhrMambaConfig
    config_class = EhrMambaConfig
    base_model_prefix = "ehrmamba"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CehrEmbeddings", "MambaBlock", "Mamba2Block"]
    _is_stateful = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # the backbone, a PreTrainedModel itself, applies Mamba's own init
        init_cehr_weights(module)


class EhrMambaModel(EhrMambaPreTrainedModel):
    """CEHR embeddings → Mamba/Mamba2 blocks → final RMSNorm; returns the last hidden states."""

    def __init__(self, config: EhrMambaConfig) -> None:
        super().__init__(config)
        from transformers import Mamba2Model, MambaModel

        self.embeddings = CehrEmbeddings(config)
        self.backbone = (Mamba2Model if config.backbone == "mamba2" else MambaModel)(config.backbone_config())
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
    ) -> torch.Tensor:
        embedded = self.embeddings(input_ids, inputs_embeds=inputs_embeds, **stream_inputs(kwargs))
        return self.backbone(
            inputs_embeds=embedded, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state


@dataclass
class EhrMambaCausalLMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def causal_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts label t+1; -100 labels (padding) are skipped."""
    shifted = logits[:, :-1].reshape(-1, logits.size(-1)).float()
    return nn.functional.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


class EhrMambaForCausalLM(EhrMambaPreTrainedModel, GenerationMixin):
    """Next-code pretraining over patient timelines; the output layer is tied to the concept embedding.

    ``generate`` works (the generation probes use it) without a recurrent cache: each step re-reads the
    whole timeline, which is what the CEHR streams need (they are per position) and cheap at EHR lengths.
    """

    _tied_weights_keys = {"lm_head.weight": "ehrmamba.embeddings.code_embed.weight"}

    def __init__(self, config: EhrMambaConfig) -> None:
        super().__init__(config)
        self.ehrmamba = EhrMambaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def prepare_inputs_for_generation(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The full sequence every step (no cache); streams beyond ``input_ids`` are not extended, so left out."""
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @can_return_tuple
    def forward(
        self, input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs: Any
    ) -> EhrMambaCausalLMOutput:
        """``labels``: the input ids with -100 on padding (``causal_lm_labels``); shifted here, not by the caller."""
        logits = self.lm_head(self.ehrmamba(input_ids, **{k: v for k, v in inputs.items() if v is not None}))
        loss = causal_loss(logits, labels) if labels is not None else None
        return EhrMambaCausalLMOutput(loss=loss, logits=logits)


class EhrMambaForSequenceClassification(EhrMambaPreTrainedModel):
    """The last non-padding state → dropout → the row's task head (MPF) → logits; BCE for ``num_labels == 1``."""

    def __init__(self, config: EhrMambaConfig) -> None:
        super().__init__(config)
        self.ehrmamba = EhrMambaModel(config)
        self.dropout = classifier_dropout(config)
        self.num_heads = config.num_tasks if config.task_heads == "per_task" else 1
        # the per-task heads as one Linear (rows grouped by task): PEFT's modules_to_save can wrap it
        self.classifier = nn.Linear(config.hidden_size, self.num_heads * config.num_labels)
        self.post_init()

    def task_of(
        self, input_ids: torch.Tensor | None, task_ids: torch.Tensor | None, batch: int, device: Any
    ) -> torch.Tensor:
        """Each row's task index: ``task_ids`` when given, else looked up from the row's first token."""
        if task_ids is not None:
            return task_ids.to(device).long().view(-1)
        if input_ids is None or not self.config.task_token_ids:
            return torch.zeros(batch, dtype=torch.long, device=device)
        match = input_ids[:, :1].eq(
            torch.tensor(self.config.task_token_ids, device=input_ids.device)[None, :]
        )
        if not bool(match.any(dim=1).all()):
            raise ValueError("a row does not start with a task token (config.task_token_ids); give task_ids")
        return match.float().argmax(dim=1)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        task_ids: torch.Tensor | None = None,
        **inputs: Any,
    ) -> SequenceClassifierOutput:
        hidden = self.ehrmamba(
            input_ids, attention_mask=attention_mask, **{k: v for k, v in inputs.items() if v is not None}
        )
        mask = (
            attention_mask
            if attention_mask is not None
            else torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        )
        rows = torch.arange(hidden.size(0), device=hidden.device)
        where = (
            last_token_index(mask.to(hidden.device))
            if self.config.pooling == "last_token"
            else rows * 0 + hidden.size(1) - 1
        )
        pooled = self.dropout(hidden[rows, where])
        every = self.classifier(pooled).view(hidden.size(0), self.num_heads, self.config.num_labels)
        if self.num_heads == 1:
            logits = every[:, 0]
        else:
            logits = every[rows, self.task_of(input_ids, task_ids, hidden.size(0), hidden.device)]
        return SequenceClassifierOutput(
            loss=outcome_loss(logits, labels, self.config.num_labels), logits=logits
        )


HEADS: dict[str, type[EhrMambaPreTrainedModel]] = {
    "base": EhrMambaModel,
    "causal_lm": EhrMambaForCausalLM,
    "classification": EhrMambaForSequenceClassification,
}
AUTO: dict[str, type[EhrMambaPreTrainedModel]] = {
    "AutoModel": EhrMambaModel,
    "AutoModelForCausalLM": EhrMambaForCausalLM,
    "AutoModelForSequenceClassification": EhrMambaForSequenceClassification,
}
