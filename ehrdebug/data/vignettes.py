"""The hand-written diagnosis vignettes of the T5 task (seed 002), split so held-out accuracy means something.

Every diagnosis keeps at least three vignettes in train; its last one (or two, when it has five or
more) goes to validation/test, so a diagnosis seen at evaluation was always seen in training and
the phrasing is always new.
"""

from __future__ import annotations

import random
from pathlib import Path

from ehrdebug.errors import UserError

QUESTION = "What is the most likely diagnosis?"
DATA = Path(__file__).with_name("vignettes_data.txt")


def load_vignettes(path: Path | None = None) -> list[dict[str, str]]:
    """``[{"input", "output", "specialty"}]`` in file order."""
    path = path or DATA
    if not path.is_file():
        raise UserError(f"vignette file not found: {path}")
    out: list[dict[str, str]] = []
    specialty = diagnosis = ""
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("# "):
            continue
        if line.startswith("## "):
            specialty, _, diagnosis = (part.strip() for part in line[3:].partition("|"))
            if not diagnosis:
                raise UserError(f"{path}:{lineno}: expected '## Specialty | Diagnosis'")
            continue
        if not diagnosis:
            raise UserError(f"{path}:{lineno}: vignette before any '## Specialty | Diagnosis' header")
        text = line if line.endswith("?") else f"{line} {QUESTION}"
        out.append({"input": text, "output": diagnosis, "specialty": specialty})
    return out


def vignette_records(path: Path | None = None) -> list[dict[str, str]]:
    """Vignettes with a ``split`` key (train/validation/test), shuffled deterministically within splits."""
    by_dx: dict[str, list[dict[str, str]]] = {}
    for v in load_vignettes(path):
        by_dx.setdefault(v["output"], []).append(v)
    out: list[dict[str, str]] = []
    for i, items in enumerate(by_dx.values()):
        held = ["validation", "test"] if len(items) >= 5 else [("validation", "test")[i % 2]]
        if len(items) < 3:
            held = []
        splits = ["train"] * (len(items) - len(held)) + held
        out += [{**v, "split": s} for v, s in zip(items, splits, strict=True)]
    rng = random.Random(0)
    rng.shuffle(out)
    return out
