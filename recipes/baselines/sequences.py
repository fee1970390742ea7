"""Code records as padded id sequences for the neural baselines, with the vocabulary saved beside the model.

Ids: 0 ``[PAD]``, 1 ``[UNK]``, 2 ``[VS]`` (between visits, so a sequence model sees visit boundaries),
then the training codes seen ``min_frequency`` times, most frequent first. Each position also carries
the age at its visit (years / 100). Long records keep their most recent ``max_length`` positions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIALS = ("[PAD]", "[UNK]", "[VS]")


class CodeIndex:
    """Code ↔ id for the neural baselines (written to ``vocab.json`` in every checkpoint)."""

    def __init__(self, codes: list[str]) -> None:
        self.tokens = [*SPECIALS, *codes]
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, record: dict[str, Any], max_length: int) -> tuple[list[int], list[float]]:
        ids: list[int] = []
        ages: list[float] = []
        visits = record.get("visits") or [0] * len(record["codes"])
        record_ages = record.get("ages") or [0] * len(record["codes"])
        previous = None
        for code, visit, age in zip(record["codes"], visits, record_ages, strict=False):
            if previous is not None and visit != previous:
                ids.append(self.ids["[VS]"])
                ages.append(float(age or 0) / 100.0)
            ids.append(self.ids.get(str(code), self.ids["[UNK]"]))
            ages.append(float(age or 0) / 100.0)
            previous = visit
        return ids[-max_length:], ages[-max_length:]

    def save(self, directory: Path) -> None:
        (directory / "vocab.json").write_text(json.dumps({"tokens": self.tokens}) + "\n", encoding="utf-8")


def pad_batch(encoded: list[tuple[list[int], list[float]]]) -> dict[str, Any]:
    """``input_ids`` (B × L, 0-padded), ``ages`` (B × L) and ``lengths`` (B) tensors."""
    import torch

    width = max(1, max(len(ids) for ids, _ in encoded))
    input_ids = torch.zeros(len(encoded), width, dtype=torch.long)
    ages = torch.zeros(len(encoded), width, dtype=torch.float)
    lengths = torch.ones(len(encoded), dtype=torch.long)
    for row, (ids, age) in enumerate(encoded):
        if ids:
            input_ids[row, : len(ids)] = torch.tensor(ids)
            ages[row, : len(ids)] = torch.tensor(age)
            lengths[row] = len(ids)
    return {"input_ids": input_ids, "ages": ages, "lengths": lengths}
