"""The code-model fix-recipes on the shipped BEHRT configs: each edits the key its probe's evidence points
at, measures what it needs on the run's training records, and refuses configs without those keys."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def _config(name: str, *overrides: str) -> dict:
    from recipes.train import load_recipe_config

    return load_recipe_config(str(CONFIGS / f"{name}.yaml"), list(overrides))


def _apply(fix_id: str, cfg: dict):
    from recipes.fixes import REGISTRY
    from recipes.fixes.base import Target

    changes = REGISTRY[fix_id].on_config(cfg, Target(path=Path("."), kind="config", config=cfg))
    return {c.key: c.after for c in changes}


def test_mlm_fixes_restore_bert_masking():
    cfg = _config("behrt_mlm_small", "mlm.ignore_index=-1", "mlm.probability=0.5", "mlm.mask_special_tokens=true",
                  "mlm.mask_share=1.0", "mlm.random_share=0.0")
    assert _apply("mlm-ignore-index", cfg) == {"mlm.ignore_index": -100}
    assert _apply("mlm-masking-rate", cfg) == {"mlm.probability": 0.15}
    assert _apply("mlm-skip-special-tokens", cfg) == {"mlm.mask_special_tokens": False}
    assert _apply("mlm-80-10-10", cfg) == {"mlm.mask_share": 0.8, "mlm.random_share": 0.1}
    assert _apply("mlm-80-10-10", cfg) == {}  # applied twice: nothing left to change


def test_grow_tables_covers_the_oldest_training_patient():
    import math

    from recipes.train.task import get_task

    cfg = _config("behrt_mlm_small", "model.age_vocab_size=40")
    oldest = max(max(r["ages"]) for r in get_task("behrt_mlm").records(cfg, "train"))
    assert oldest >= 60
    assert _apply("grow-embedding-tables", cfg) == {"model.age_vocab_size": math.ceil((int(oldest) + 1) * 1.1)}
    cfg = _config("behrt_mlm_small", "age_bucket_years=0.5")  # null table (120 rows) against the half-year ids
    assert _apply("grow-embedding-tables", cfg) == {"model.age_vocab_size": math.ceil((int(oldest / 0.5) + 1) * 1.1)}
    assert _apply("grow-embedding-tables", _config("behrt_mlm_small")) == {}  # 120 rows already cover the patients


def test_drop_outcome_codes_measures_the_leak_on_the_training_records(tmp_path):
    from recipes.zoo.code_data import DEATH_CODE, prepare_leaky

    (override,) = prepare_leaky(tmp_path)
    cfg = _config("behrt_mortality_small", override)
    assert _apply("drop-outcome-codes", cfg) == {"data.exclude_codes": [DEATH_CODE]}
    from recipes.train.task import get_task

    assert not any(DEATH_CODE in r["codes"] for r in get_task("behrt_classify").records(cfg, "train"))
    assert _apply("drop-outcome-codes", _config("behrt_mortality_small")) == {}  # the shipped records do not leak


def test_increase_learning_rate_and_foreign_configs():
    from ehrdebug.errors import UserError

    cfg = _config("behrt_mortality_small", "lr=1e-7")
    assert _apply("increase-learning-rate", cfg) == {"lr": 1e-3}  # tenfold steps to the BEHRT recipes' default
    assert _apply("increase-learning-rate", cfg) == {}  # at the recipe's rate: no further
    bart = _config("bart_ehrgen_small")
    with pytest.raises(UserError, match="mlm.ignore_index"):
        _apply("mlm-ignore-index", bart)
