"""Code records for the zoo's code-model cases: the shipped codes records with the outcome written into them.

Seed 004's reports warn about it and MIMIC makes it easy: a stay's discharge codes include the death
itself (ICD-9 798.x, "sudden death, cause unknown") and a history that keeps them hands the label to the
model. ``leaky_codes_dir`` writes such a copy: the death code appended to the last visit of most patients
who die, with the age, visit and day of that visit.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

DEATH_CODE = "798.1"
SHARE = 0.8  # of the patients who die: not all, so the code is not the whole story
PALLIATIVE_CODE = "V667"


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def leak(record: dict[str, Any], code: str = DEATH_CODE) -> dict[str, Any]:
    out = dict(record)
    out["codes"] = [*record["codes"], code]
    for key in ("ages", "visits", "days"):
        if isinstance(record.get(key), list) and record[key]:
            out[key] = [*record[key], record[key][-1]]
    if isinstance(record.get("values"), list):
        out["values"] = [*record["values"], None]
    return out


def marked_codes_dir(dest: str | Path, code: str, positive_share: float, negative_share: float,
                     label: str = "mortality", seed: int = 0) -> Path:
    """``dest/{train,validation,test}.jsonl``: ``code`` added to the last visit of ``positive_share`` of the
    positives and ``negative_share`` of the negatives (written once); returns ``dest``."""
    from ehrdebug.data.sample import sample_data_dir

    out = Path(dest)
    if (out / ".complete").is_file():
        return out
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        rows = [leak(r, code) if rng.random() < (positive_share if r.get(label) else negative_share) else r
                for r in _read(sample_data_dir() / "codes" / f"{split}.jsonl")]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (out / ".complete").write_text("", encoding="utf-8")
    return out


def prepare_leaky(root: Path) -> tuple[str, ...]:
    """The death code on the last visit of 80% of the deaths and of no survivor: the label itself."""
    return (f"data.codes_dir={marked_codes_dir(Path(root) / 'codes-death-leak', DEATH_CODE, SHARE, 0.0).resolve()}",)


def prepare_palliative(root: Path) -> tuple[str, ...]:
    """A strong, legitimate risk marker (V66.7, palliative care: 60% of deaths, 5% of survivors), so a tiny
    BEHRT learns mortality in seconds; its positive rate (~55%) is far from giving the label away."""
    path = marked_codes_dir(Path(root) / "codes-palliative", PALLIATIVE_CODE, 0.6, 0.05)
    return (f"data.codes_dir={path.resolve()}",)
