"""What the BEHRT tasks share on the training layer: code records → word-level tokenizer → BEHRT inputs.

Records are the codes records of docs/data.md (``codes``, ``ages``, ``visits``, ``days``, labels), read
from ``data.codes_dir`` (the shipped ``sample_data/ehr/codes`` by default, or a folder that
``ehrdebug data build codes --source meds|mimic`` wrote). The tokenizer is built on the training split
only (``ehrdebug.codetok``); a fine-tuning run (``init_from``) and a resumed one read the tokenizer of
the checkpoint they start from, so ids mean the same codes. The model is ``BehrtConfig.tier(size)``
with ``model.*`` overrides (tiny test models), the head the task names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.train.schema import Fraction, Key, NonNegInt, PosFloat, PosInt
from recipes.train.task import Datasets, Task

BEHRT_KEYS: dict[str, Key] = {
    "data.codes_dir": Key(str, "sample_data/ehr/codes", "folder of codes records {train,validation,test}.jsonl"),
    "max_length": Key(PosInt, 128, "tokens per record ([CLS] + codes + visit separators); the oldest are dropped"),
    "age_bucket_years": Key(PosFloat, 1.0, "years per age id"),
    "model.age_vocab_size": Key(PosInt | None, None, "rows of the age table (null: the tier's 120); older ages are clamped onto its last row"),
    "data.exclude_codes": Key(list[str], [], "codes removed from every record before it is encoded (e.g. codes that record the outcome)"),
    "tokenizer.min_frequency": Key(PosInt, 1, "codes seen fewer times in training become [UNK]"),
    "tokenizer.value_bins": Key(NonNegInt, 0, "quantile bins for numeric values (0 = none)"),
    "model_dropout": Key(Fraction | None, None, "hidden and attention dropout (null keeps the tier's 0.1)"),
    "model.hidden_size": Key(PosInt | None, None, "override the tier's width"),
    "model.num_hidden_layers": Key(PosInt | None, None, "override the tier's depth"),
    "model.num_attention_heads": Key(PosInt | None, None, "override the tier's heads"),
    "model.intermediate_size": Key(PosInt | None, None, "override the tier's feed-forward width"),
    "eval_batch_size": Key(PosInt, 64, "records per forward pass in evaluation"),
    "num_log_samples": Key(NonNegInt, 4, "evaluation samples logged"),
}

BEHRT_DEFAULTS: dict[str, Any] = {
    "base": None, "lr": 1e-3, "warmup_steps": 20, "batch_size": 32, "epochs": 10, "log_every": 10,
    "lora.target_modules": ["query", "value"], "data.root": None,
}  # fmt: skip


def drop_codes(records: list[dict[str, Any]], codes: list[str]) -> list[dict[str, Any]]:
    """Records without the ``codes`` (and their per-code ages, visits, days, values kept aligned)."""
    if not codes:
        return records
    drop = set(codes)
    out = []
    for record in records:
        keep = [i for i, c in enumerate(record.get("codes") or []) if c not in drop]
        if len(keep) == len(record.get("codes") or []):
            out.append(record)
            continue
        new = dict(record)
        for key in ("codes", "ages", "visits", "days", "values", "times"):
            if isinstance(record.get(key), list) and len(record[key]) == len(record["codes"]):
                new[key] = [record[key][i] for i in keep]
        out.append(new)
    return out


class BehrtTask(Task):
    """A BEHRT head on code records; subclasses name the head (``HEAD``) and the labels."""

    ARCHITECTURE = "behrt"
    HEAD = "base"
    keys = BEHRT_KEYS
    defaults = BEHRT_DEFAULTS

    # -- records and tokenizer ------------------------------------------------------------------
    def codes_dir(self, config: dict[str, Any]) -> Path:
        from ehrdebug.data.sample import resolve_data_path

        return resolve_data_path(config["data"]["codes_dir"])

    def records(self, config: dict[str, Any], split: str) -> list[dict[str, Any]]:
        from ehrdebug.data.sample import read_jsonl

        records = read_jsonl(self.codes_dir(config) / f"{split}.jsonl",
                             missing="data.codes_dir holds {train,validation,test}.jsonl")
        limit = config["data"]["max_train"] if split == "train" else None
        return self.usable(drop_codes(records[:limit] if limit else records, config["data"]["exclude_codes"]), config)

    def usable(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
        """Records this task can learn from (a classifier needs its label)."""
        return [r for r in records if r.get("codes")]

    def data_files(self, config: dict[str, Any]) -> dict[str, Any]:
        root = self.codes_dir(config)
        return {s: str((root / f"{s}.jsonl").resolve()) for s in ("train", "validation", "test") if (root / f"{s}.jsonl").is_file()}

    def tokenizer(self, config: dict[str, Any], start: Path | None) -> Any:
        """The checkpoint's tokenizer when starting from one, else one built on the training split."""
        if start is not None:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(start))
        from ehrdebug.codetok import build_code_tokenizer

        tok = config["tokenizer"]
        return build_code_tokenizer(self.records(config, "train"), min_frequency=tok["min_frequency"],
                                    value_bins=tok["value_bins"], model_max_length=config["max_length"])  # fmt: skip

    # -- model ----------------------------------------------------------------------------------
    def model_config(self, config: dict[str, Any], tokenizer: Any) -> Any:
        from ehrdebug.codetok import num_value_bins
        from ehrdebug.models.behrt import BehrtConfig

        overrides = {k: v for k, v in config["model"].items() if v is not None}
        if config["model_dropout"] is not None:
            overrides.update(hidden_dropout_prob=float(config["model_dropout"]), attention_probs_dropout_prob=float(config["model_dropout"]))
        bins = num_value_bins(tokenizer)
        return BehrtConfig.tier(config["size"] if config["size"] != "tiny" else "small", vocab_size=len(tokenizer),
                                value_vocab_size=bins + 1 if bins else 0, **self.head_config(config), **overrides)  # fmt: skip

    def head_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        import ehrdebug.models  # noqa: F401 - registers BEHRT with the Auto classes
        from ehrdebug.models import head_class
        from recipes.train.checkpoint import resolve_init

        start = resolve_init(config["init_from"]) if config["init_from"] else None
        tokenizer = self.tokenizer(config, checkpoint or start)
        cls = head_class("behrt", self.HEAD)
        if start is not None:  # fine-tuning: the pretrained encoder, a new head (weights missing → initialised)
            extra = self.head_config(config)
            if config["model_dropout"] is not None:
                extra.update(hidden_dropout_prob=float(config["model_dropout"]), attention_probs_dropout_prob=float(config["model_dropout"]))
            model = cls.from_pretrained(str(start), **extra)
        else:
            model = cls(self.model_config(config, tokenizer))
        info = {"vocab_size": len(tokenizer), "init_from": str(start) if start else None, "head": self.HEAD,
                "tier": config["size"]}  # fmt: skip
        return model, tokenizer, info

    def modules_to_save(self, model: Any) -> list[str]:
        """LoRA trains the EHR embeddings (code, age, visit, position) and the task head in full."""
        return ["embeddings", *self.HEAD_MODULES]

    HEAD_MODULES: tuple[str, ...] = ()

    # -- features and batches -------------------------------------------------------------------
    def encode(self, tokenizer: Any, record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        """BEHRT inputs of one record; ages and visit positions are clamped into the smallest tier's tables
        (counted in ``clamped``, which the id-range probe reads) rather than crashing a forward pass."""
        from ehrdebug.codetok import DEFAULT_MAX_AGE_IDS, encode_record

        ages = int(config["model"].get("age_vocab_size") or DEFAULT_MAX_AGE_IDS)  # clamp into the table the model has
        return encode_record(tokenizer, record, config["max_length"], age_bucket_years=float(config["age_bucket_years"]),
                             max_age_ids=ages, next_visit=self.NEXT_VISIT)  # fmt: skip

    NEXT_VISIT = False

    def features(self, records: list[dict[str, Any]], tokenizer: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
        keep = ("input_ids", "attention_mask", "age_ids", "segment_ids", "position_ids", "time_ids", "value_ids",
                "special_tokens_mask", "next_visit_labels")  # fmt: skip
        out = []
        for record in records:
            enc = self.encode(tokenizer, record, config)
            feature = {k: v for k, v in enc.items() if k in keep}
            feature.update(self.label_of(record, config))
            out.append(feature)
        return out

    def label_of(self, record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def datasets(self, config: dict[str, Any], tokenizer: Any) -> Datasets:
        train = self.records(config, "train")
        evals = self.records(config, config["data"]["eval_split"])
        return Datasets(train=self.features(train, tokenizer, config), eval=self.features(evals, tokenizer, config), eval_records=evals)

    def batch(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded tensors with the task's labels under ``labels`` (what the model's forward takes)."""
        from ehrdebug.models.batching import collate_codes

        batch = collate_codes(features)
        if "next_visit_labels" in batch:
            batch["labels"] = batch.pop("next_visit_labels")
        if "label" in batch:
            batch["labels"] = batch.pop("label").float()
        batch.pop("special_tokens_mask", None)
        return batch

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        return self.batch

    def probe_config(self, config: dict[str, Any]) -> Any:
        from ehrdebug.codetok import SPECIAL_TOKENS
        from ehrdebug.config import EhrDebugConfig

        return EhrDebugConfig(structural_tokens=list(SPECIAL_TOKENS), text_field="codes", patient_field="patient_id",
                              label_field=self.label_field(config), max_length=config["max_length"])  # fmt: skip

    def label_field(self, config: dict[str, Any]) -> str:
        return ""

    # -- evaluation helpers ---------------------------------------------------------------------
    def outputs(self, model: Any, features: list[dict[str, Any]], config: dict[str, Any], device: Any, collate: Any = None) -> Any:
        """Concatenated logits of ``features`` (no gradients, model in eval mode)."""
        import torch

        collate = collate or self.batch
        model.eval()
        chunks = []
        with torch.no_grad():
            for i in range(0, len(features), int(config["eval_batch_size"])):
                batch = collate(features[i : i + int(config["eval_batch_size"])])
                batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
                chunks.append(model(**batch).logits.float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0)
