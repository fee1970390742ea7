"""Records → tokenized features → batches, with seed 002's knobs left visible.

``label_pad`` decides what padded label positions hold (-100: ignored by the loss; ``pad``: the model
is trained to emit padding — seed 002's all-PAD generations). ``drop_string_columns: false`` keeps the
raw strings in each feature, and ``DataCollatorForSeq2Seq`` then fails the way seed 002's did.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any


def split_files(config: dict[str, Any]) -> dict[str, str]:
    """Absolute paths of the task's split files (for run.json, so the doctor can read the data)."""
    from ehrdebug.data.sample import sample_data_dir

    root = Path(config["data"]["root"] or sample_data_dir()) / config["data"]["task"]
    out = {s: str((root / f"{s}.jsonl").resolve()) for s in ("train", "validation", "test")}
    return {k: v for k, v in out.items() if Path(v).is_file()}


def load_records(config: dict[str, Any], split: str) -> list[dict[str, Any]]:
    from ehrdebug.data.sample import load_task

    records = load_task(config["data"]["task"], split, root=config["data"]["root"])
    limit = config["data"]["max_train"] if split == "train" else None
    return records[:limit] if limit else records


def code_vocabulary(config: dict[str, Any]) -> set[str] | None:
    from ehrdebug.data.sample import sample_data_dir

    path = config["data"]["codes"] or Path(config["data"]["root"] or sample_data_dir()) / "seq2seq" / "codes.txt"
    path = Path(path)
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def training_pairs(task: Any, records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The task's training pairs plus ``augment.copies - 1`` copies of every record with phrases dropped.

    Why: three vignettes per diagnosis are memorised whole; seeing each finding on its own teaches the
    model which phrase points to which diagnosis. Deterministic in ``seed``; the originals stay first.
    """
    augment = config.get("augment") or {"copies": 1, "drop_phrases": 0.0}
    rng = random.Random(config["seed"])
    extra = [{**r, "input": task.drop_phrases(r["input"], float(augment["drop_phrases"]), rng)}
             for _ in range(int(augment["copies"]) - 1) for r in records]  # fmt: skip
    return task.pairs(records + extra, config)


def make_features(pairs: list[tuple[str, str, dict[str, Any]]], tokenizer: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """(source text, label text, record) → dicts of ``input_ids``/``attention_mask``/``labels``."""
    padding = "max_length" if config["pad_to_max_length"] else False
    pad_labels_with_ignore = config["label_pad"] == -100
    features = []
    for source, target, record in pairs:
        enc = tokenizer(source, truncation=True, max_length=config["max_length"], padding=padding)
        labels = tokenizer(text_target=target, truncation=True, max_length=config["max_target_length"], padding=padding)["input_ids"]
        if padding and pad_labels_with_ignore:
            labels = [-100 if i == tokenizer.pad_token_id else i for i in labels]
        feature = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
        if not config["drop_string_columns"]:
            feature.update({k: v for k, v in record.items() if isinstance(v, str)})
        features.append(feature)
    return features


def make_collator(tokenizer: Any, model: Any, config: dict[str, Any]) -> Any:
    from transformers import DataCollatorForSeq2Seq

    label_pad = -100 if config["label_pad"] == -100 else tokenizer.pad_token_id
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=label_pad, padding=True)


def epoch_batches(features: list[dict[str, Any]], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Index batches of one epoch, shuffled by (seed, epoch) so a resumed run sees the same order."""
    order = list(range(len(features)))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
