"""CEHR-BERT and BigBird on the training layer: MLM then mortality, and BigBird from scratch, on the shipped records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TINY = ["data.max_train=160", "threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1",
        "model.num_attention_heads=2", "model.intermediate_size=64", "max_minutes=null"]  # fmt: skip


def _train(name: str, *overrides: str) -> tuple[Path, dict]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run = run_training(load_recipe_config(CONFIGS / f"{name}.yaml", [*TINY, *overrides]))
    return run, json.loads((run / "artifacts" / "metrics_summary.json").read_text())


@pytest.mark.slow
def test_mlm_then_mortality_and_bigbird(tmp_path: Path) -> None:
    mlm_dir, mlm = _train("cehrbert_mlm_small", "max_steps=30", "eval_every=30", f"out={tmp_path / 'mlm'}")
    losses = [row["loss"] for row in mlm["history"]["train"]]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 and {"test_mlm_accuracy", "test_perplexity"} <= set(
        mlm["test"]
    )
    _, mort = _train("cehrbert_mortality_small", "max_steps=20", "eval_every=10", "bootstrap=20", f"init_from={mlm_dir}",
                     f"out={tmp_path / 'mort'}")  # fmt: skip
    bird_dir, bird = _train("bigbird_mortality_small", "max_steps=10", "eval_every=10", "bootstrap=20", "model.block_size=4",
                            f"out={tmp_path / 'bird'}")  # fmt: skip
    for summary in (mort, bird):
        assert {"test_auroc", "test_auprc", "test_f1"} <= set(summary["test"])
    config = json.loads((bird_dir / bird["best_checkpoint"] / "config.json").read_text())
    assert config["model_type"] == "cehrbert" and config["attention"] == "bigbird"


def test_mlm_batches_mask_only_concepts():
    from ehrdebug.models.cehr_inputs import CEHR_SPECIAL_TOKENS
    from recipes.train.config import load_recipe_config
    from recipes.train.task import get_task

    task = get_task("cehrbert_mlm")
    config = load_recipe_config(CONFIGS / "cehrbert_mlm_small.yaml", TINY)
    model, tok, _ = task.build(config, None)
    features = task.features(task.records(config, "validation")[:32], tok, config)
    batch = task.collator(tok, model, config, train=False)(features)
    targets = batch["labels"][batch["labels"] != -100]
    structural = set(tok.convert_tokens_to_ids([*CEHR_SPECIAL_TOKENS, "[CLS]", "[VS]", "[PAD]"]))
    assert len(targets) and not structural & set(targets.tolist())
    assert model(**batch).loss.isfinite()
