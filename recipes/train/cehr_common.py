"""What the CEHR-BERT/BigBird and EHRMamba tasks share: code records → CEHR timelines → model inputs.

The records, splits, code exclusion, label handling and metrics are the BEHRT tasks' (``behrt_common``);
what changes is the sequence: ``ehrdebug.models.cehr_inputs`` inserts visit start/end tokens and the
artificial time tokens between visits, the tokenizer gains those tokens (``cehr_tokenizer``), and the
batch carries token types, visit segments/orders and the time and age values the CEHR embedding reads.
The model is ``<Family>Config.tier(size)`` with ``model.*`` overrides and the head the task names,
looked up in ``ehrdebug.models.HEADS`` — nothing branches on a family's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.train.behrt_common import BEHRT_KEYS, BehrtTask
from recipes.train.schema import Key, PosInt

_NOT_CEHR = (
    "age_bucket_years",
    "model.age_vocab_size",
    "model.intermediate_size",
    "model.num_attention_heads",
)
CEHR_KEYS: dict[str, Key] = {
    **{k: v for k, v in BEHRT_KEYS.items() if k not in _NOT_CEHR},
    "max_length": Key(
        PosInt, 256, "tokens per timeline (prefix + visit/time tokens + codes); the oldest are dropped"
    ),
    "task_token": Key(
        str | None, None, "prompt token put first ([MOR], [LOS], [REA]; EHRMamba's multitask prompts)"
    ),
    "model.max_visits": Key(PosInt | None, None, "rows of the visit-order table (null: the tier's)"),
    "model.time_embedding_size": Key(PosInt | None, None, "learned sinusoidal features per time/age value"),
}

CLASSIFY_KEYS = (
    "label_field",
    "bootstrap",
    "baselines",
)  # the BEHRT classifier's own keys, shared as they are


class CehrTask(BehrtTask):
    """A CEHR model family (``FAMILY`` = model_type in ``ehrdebug.models``) on code records."""

    FAMILY = ""
    keys = CEHR_KEYS

    def config_class(self) -> Any:
        import ehrdebug.models as models

        return models.CONFIGS[self.FAMILY]

    def tokenizer(self, config: dict[str, Any], start: Path | None) -> Any:
        from ehrdebug.models.cehr_inputs import ensure_cehr_tokens

        return ensure_cehr_tokens(super().tokenizer(config, start))

    def model_config(self, config: dict[str, Any], tokenizer: Any) -> Any:
        from ehrdebug.codetok import num_value_bins

        overrides = {k: v for k, v in config["model"].items() if v is not None}
        if config["model_dropout"] is not None:
            overrides.update(self.dropout_config(float(config["model_dropout"])))
        bins = num_value_bins(tokenizer)
        size = config["size"] if config["size"] != "tiny" else "small"
        return self.config_class().tier(size, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                        value_vocab_size=bins + 1 if bins else 0, **self.head_config(config), **overrides)  # fmt: skip

    def dropout_config(self, p: float) -> dict[str, float]:
        return {"hidden_dropout_prob": p}

    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        from ehrdebug.models import head_class
        from recipes.train.checkpoint import resolve_init

        start = resolve_init(config["init_from"]) if config["init_from"] else None
        tokenizer = self.tokenizer(config, checkpoint or start)
        cls = head_class(self.FAMILY, self.HEAD)
        if start is not None:  # fine-tuning: the pretrained body, a new head
            extra = {
                **self.head_config(config),
                **(
                    {}
                    if config["model_dropout"] is None
                    else self.dropout_config(float(config["model_dropout"]))
                ),
            }
            model = cls.from_pretrained(str(start), **extra)
            if len(tokenizer) > model.config.vocab_size:  # a task token the pretraining vocabulary lacked
                model.resize_token_embeddings(len(tokenizer))
        else:
            model = cls(self.model_config(config, tokenizer))
        info = {
            "vocab_size": len(tokenizer),
            "init_from": str(start) if start else None,
            "head": self.HEAD,
            "tier": config["size"],
        }
        return model, tokenizer, info

    def max_visits(self, config: dict[str, Any]) -> int:
        """Rows of the visit-order table: visit orders beyond it are clamped (and counted) while encoding."""
        from ehrdebug.models.cehr_embeddings import CEHR_EMBEDDING_DEFAULTS

        size = config["size"] if config["size"] != "tiny" else "small"
        module = __import__(self.config_class().__module__, fromlist=["TIERS"])
        tier = getattr(module, "TIERS", {}).get(size, {})
        return int(
            config["model"].get("max_visits")
            or tier.get("max_visits")
            or CEHR_EMBEDDING_DEFAULTS["max_visits"]
        )

    def encode(
        self, tokenizer: Any, record: dict[str, Any], config: dict[str, Any], max_visits: int | None = None
    ) -> dict[str, Any]:
        from ehrdebug.models.cehr_inputs import encode_cehr

        return encode_cehr(tokenizer, record, int(config["max_length"]), task_token=config["task_token"],
                           add_cls=self.ADD_CLS, max_visits=max_visits or self.max_visits(config))  # fmt: skip

    ADD_CLS = True

    def features(
        self, records: list[dict[str, Any]], tokenizer: Any, config: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from ehrdebug.models.cehr_inputs import FLOAT_KEYS, INT_KEYS

        out, visits = [], self.max_visits(config)
        for record in records:
            enc = self.encode(tokenizer, record, config, visits)
            feature = {k: enc[k] for k in (*INT_KEYS, *FLOAT_KEYS)}
            feature["clamped"] = enc["clamped"]
            feature.update(self.label_of(record, config))
            out.append(feature)
        return out

    def batch(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Right-padded CEHR tensors with the task's label under ``labels``."""
        from ehrdebug.models.cehr_inputs import collate_cehr

        batch = collate_cehr(features)
        batch.pop("special_tokens_mask", None)
        if "label" in batch:
            batch["labels"] = batch.pop("label").float()
        return batch

    def probe_config(self, config: dict[str, Any]) -> Any:
        from ehrdebug.codetok import SPECIAL_TOKENS
        from ehrdebug.config import EhrDebugConfig
        from ehrdebug.models.cehr_inputs import CEHR_SPECIAL_TOKENS

        return EhrDebugConfig(structural_tokens=[*SPECIAL_TOKENS, *CEHR_SPECIAL_TOKENS], text_field="codes", patient_field="patient_id",
                              label_field=self.label_field(config), max_length=config["max_length"])  # fmt: skip

    def start_findings(
        self, model: Any, config: dict[str, Any], steps_per_epoch: int | None = None
    ) -> list[Any]:
        """Findings to log before the first epoch (the loop calls it when the task has it): none by default."""
        return []
