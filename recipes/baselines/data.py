"""Code records for the baselines: the same splits and fields every model of the benchmark reads.

Records are the codes records of docs/data.md (``codes``, ``ages``, ``visits``, labels) in
``data.root/{train,validation,test}.jsonl`` (the shipped ``sample_data/ehr/codes`` when ``data.root`` is
null, or any folder ``ehrdebug data build codes`` wrote, e.g. from a MEDS or MIMIC root). Features are
built from the training split only (vocabulary, scalers), so validation and test never shape them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

SHIPPED = "sample_data/ehr/codes"
SPLITS = ("train", "validation", "test")


def data_root(config: dict[str, Any]) -> Path:
    from ehrdebug.data.sample import resolve_data_path

    return resolve_data_path(config["data"].get("root") or SHIPPED)


def read_split(root: Path, split: str) -> list[dict[str, Any]]:
    from ehrdebug.data.sample import read_jsonl

    return read_jsonl(root / f"{split}.jsonl", missing="data.root holds {train,validation,test}.jsonl")


@dataclass
class Splits:
    """The three splits, each filtered to the records the task can use."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    test: list[dict[str, Any]]
    root: Path

    def files(self) -> dict[str, str]:
        return {s: str((self.root / f"{s}.jsonl").resolve()) for s in SPLITS}


def load_splits(config: dict[str, Any], usable: Any) -> Splits:
    """Read the splits under ``data.root`` and keep ``usable(record)`` ones; ``data.max_train`` caps train."""
    root = data_root(config)
    parts = {s: [r for r in read_split(root, s) if r.get("codes") and usable(r)] for s in SPLITS}
    if config["data"].get("max_train"):
        parts["train"] = parts["train"][: int(config["data"]["max_train"])]
    for split, records in parts.items():
        if not records:
            raise UserError(f"{root / (split + '.jsonl')}: no usable records for this task")
    return Splits(parts["train"], parts["validation"], parts["test"], root)


def subject_id(record: dict[str, Any]) -> Any:
    return record.get("subject_id", record.get("patient_id"))


# -- features ------------------------------------------------------------------------------------
def code_vocab(records: list[dict[str, Any]], min_frequency: int = 1) -> list[str]:
    """Codes seen at least ``min_frequency`` times in ``records``, most frequent first (ties by name)."""
    counts = Counter(str(c) for r in records for c in r["codes"])
    return sorted((c for c, n in counts.items() if n >= min_frequency), key=lambda c: (-counts[c], c))


def bag_of_codes(records: list[dict[str, Any]], vocab: list[str], binary: bool = False) -> Any:
    """A sparse (records × vocabulary) matrix of code counts (or presence); unknown codes are dropped."""
    import numpy as np
    from scipy.sparse import csr_matrix

    index = {c: i for i, c in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for row, record in enumerate(records):
        counts = Counter(index[c] for c in map(str, record["codes"]) if c in index)
        for col, n in counts.items():
            rows.append(row)
            cols.append(col)
            vals.append(1.0 if binary else float(n))
    return csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(records), len(vocab)))


def ages_first_last(records: list[dict[str, Any]]) -> Any:
    """(records × 2): age at the first and at the last input visit (NaN when a record has no ages)."""
    import numpy as np

    out = np.full((len(records), 2), np.nan, dtype=np.float32)
    for i, record in enumerate(records):
        ages = record.get("ages") or []
        if ages:
            out[i] = (float(ages[0]), float(ages[-1]))
    return out


def visits_of(record: dict[str, Any]) -> list[tuple[list[str], float]]:
    """The record's input visits in order: (codes of the visit, age at the visit)."""
    visits: dict[int, list[str]] = {}
    ages: dict[int, float] = {}
    visit_ids = record.get("visits") or [0] * len(record["codes"])
    record_ages = record.get("ages") or [0] * len(record["codes"])
    for code, visit, age in zip(record["codes"], visit_ids, record_ages, strict=False):
        visits.setdefault(int(visit), []).append(str(code))
        ages.setdefault(int(visit), float(age or 0))
    return [(visits[v], ages[v]) for v in sorted(visits)]
