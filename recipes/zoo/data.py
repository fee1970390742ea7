"""A small, clean data root cut from the shipped sample data, so each zoo run trains and evaluates in seconds.

Validation and test keep only examples whose text (prompt for EHR lines, input for vignettes) and
patient never appear in an earlier split: the zoo's healthy run must not be flagged for leakage the
zoo itself introduced.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

SIZES = {"seq2seq": (192, 32, 32), "diagnosis": (204, 34, 37)}
KEYS = {"seq2seq": "prompt", "diagnosis": "input"}


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def tiny_root(dest: str | Path, source: str | Path | None = None) -> Path:
    """Write ``dest/<task>/{train,validation,test}.jsonl`` (+ ``seq2seq/codes.txt``) once; return ``dest``."""
    from ehrdebug.data.sample import sample_data_dir

    src = Path(source) if source else sample_data_dir()
    out = Path(dest)
    if (out / ".complete").is_file():
        return out
    for task, sizes in SIZES.items():
        key = KEYS[task]
        seen_text: set[str] = set()
        seen_patient: set[Any] = set()
        for split, size in zip(("train", "validation", "test"), sizes, strict=True):
            kept = []
            for record in _read(src / task / f"{split}.jsonl"):
                text, patient = record.get(key), record.get("patient_id")
                if text in seen_text or (patient is not None and patient in seen_patient):
                    continue
                kept.append(record)
                if len(kept) == size:
                    break
            for record in kept:
                seen_text.add(record.get(key))
                if record.get("patient_id") is not None:
                    seen_patient.add(record["patient_id"])
            _write(out / task / f"{split}.jsonl", kept)
    shutil.copy2(src / "seq2seq" / "codes.txt", out / "seq2seq" / "codes.txt")
    (out / ".complete").write_text("", encoding="utf-8")
    return out
