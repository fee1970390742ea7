"""Few-shot T5 training knobs: phrase-dropout augmentation and the model's dropout rate."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ehrdebug.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TEXT = ("Symptoms: Productive cough with rusty sputum, rigors, pleuritic chest pain. Temperature 39.2 C. "
        "Crackles over the right lower lobe. What is the most likely diagnosis?")


def test_drop_phrases_keeps_the_question_and_at_least_one_finding() -> None:
    from recipes.train.t5_diagnosis import QUESTION, drop_phrases

    rng = random.Random(0)
    outs = [drop_phrases(TEXT, 0.5, rng) for _ in range(200)]
    assert all(o.endswith(QUESTION) and len(o) > len(QUESTION) + 5 for o in outs)
    assert len(set(outs)) > 10 and all(len(o) <= len(TEXT) for o in outs)
    assert sum(o == TEXT for o in outs) < 20  # most copies really lose findings
    assert drop_phrases(TEXT, 0.0, rng) == TEXT
    everything_dropped = drop_phrases(TEXT, 0.999, random.Random(1))
    assert everything_dropped != QUESTION and everything_dropped.endswith(QUESTION)


def test_training_pairs_add_deterministic_copies_after_the_originals() -> None:
    from recipes.train import data as D
    from recipes.train import load_recipe_config, t5_diagnosis

    config = load_recipe_config(None, ["recipe=t5_diagnosis", "task_prefix='dx: '", "augment.copies=3", "augment.drop_phrases=0.5"])
    records = D.load_records(config, "train")[:20]
    pairs = D.training_pairs(t5_diagnosis, records, config)
    assert len(pairs) == 60 and [p[0] for p in pairs[:20]] == [f"dx: {r['input']}" for r in records]
    assert [p[1] for p in pairs[20:40]] == [r["output"] for r in records]  # labels never change
    assert sum(a[0] != b[0] for a, b in zip(pairs[:20], pairs[20:40], strict=True)) >= 15
    assert pairs == D.training_pairs(t5_diagnosis, records, config)  # same seed, same copies
    one = load_recipe_config(None, ["recipe=t5_diagnosis"])
    assert len(D.training_pairs(t5_diagnosis, records, one)) == 20


def test_model_dropout_replaces_the_base_rate() -> None:
    import torch

    from recipes.train.tokens import load_base

    base = str(REPO / "sample_data" / "bases" / "t5")
    _, kept = load_base(base, "t5_diagnosis")
    _, zero = load_base(base, "t5_diagnosis", 0.0)
    rates = lambda m: {x.p for x in m.modules() if isinstance(x, torch.nn.Dropout)}  # noqa: E731
    assert rates(kept) == {0.1} and rates(zero) == {0.0} and zero.config.dropout_rate == 0.0


@pytest.mark.parametrize(("override", "match"), [
    (["recipe=t5_diagnosis", "augment.copies=0"], "augment.copies"),
    (["recipe=t5_diagnosis", "augment.drop_phrases=1.5"], "augment.drop_phrases"),
    (["recipe=bart_ehrgen", "augment.copies=2"], "t5_diagnosis only"),
    (["recipe=t5_diagnosis", "model_dropout=2"], "model_dropout"),
])
def test_bad_augment_and_dropout_values_are_user_errors(override: list[str], match: str) -> None:
    from recipes.train import load_recipe_config

    with pytest.raises(UserError, match=match):
        load_recipe_config(None, override)
