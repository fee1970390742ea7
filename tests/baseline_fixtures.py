"""Tiny code records with a real signal, for the baseline, bench, compare and pack tests (seconds each).

Mortality is 1 when the last input visit holds ``R1`` (and 5% label noise in training); the next visit repeats
the patient's chronic code ``C<k>`` and adds ``F<k>`` for it, so every task has something to learn.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

FAST = {  # overrides that keep each neural baseline to a second or two
    "lstm": ["train.epochs=3", "model.embedding_size=8", "model.hidden_size=8"],
    "med2vec": ["pretrain.epochs=2", "train.epochs=4", "model.embedding_size=8", "model.hidden_size=8"],
    "xgboost": ["model.n_estimators=30", "early_stopping.patience=10"],
    "logreg": [],
}


def write_codes(root: Path, n_train: int = 80, n_eval: int = 40, seed: int = 0) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    pid = 0
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        with (root / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(n):
                pid += 1
                chronic = f"C{rng.randint(0, 3)}"
                visits = rng.randint(1, 3)
                risky = (i % 4 == 0) if split != "train" else rng.random() < 0.3
                codes, ages, vis, days = [], [], [], []
                age = rng.randint(30, 80)
                for v in range(visits):
                    extra = [f"N{rng.randint(0, 9)}" for _ in range(rng.randint(1, 3))]
                    visit_codes = [chronic, *extra] + (["R1"] if risky and v == visits - 1 else [])
                    codes += visit_codes
                    ages += [age + v] * len(visit_codes)
                    vis += [v] * len(visit_codes)
                    days += [100 * v] * len(visit_codes)
                label = int(risky) if split != "train" or rng.random() > 0.05 else 1 - int(risky)
                record = {
                    "patient_id": pid,
                    "codes": codes,
                    "ages": ages,
                    "visits": vis,
                    "days": days,
                    "mortality": label,
                    "next_visit_codes": [chronic, f"F{chronic[1:]}"],
                }
                fh.write(json.dumps(record) + "\n")
    return root
