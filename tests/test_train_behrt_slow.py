"""End to end on the shipped codes records (a few hundred): BEHRT small MLM pretraining, then mortality
fine-tuning from it, fully and with LoRA; test figures beside the bag-of-codes LR and the prior."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
COMMON = ["data.max_train=300", "threads=1", "log_every=1", "device=cpu"]


def _train(name: str, *overrides: str) -> tuple[Path, dict]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run = run_training(load_recipe_config(CONFIGS / f"{name}.yaml", [*COMMON, *overrides]))
    return run, json.loads((run / "artifacts" / "metrics_summary.json").read_text())


def _learned(summary: dict) -> bool:
    losses = [row["loss"] for row in summary["history"]["train"]]
    return sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


@pytest.mark.slow
def test_pretrain_then_finetune_full_and_lora_on_the_shipped_data(tmp_path: Path) -> None:
    mlm, pre = _train("behrt_mlm_small", "max_steps=40", "eval_every=40", f"out={tmp_path / 'mlm'}")
    assert _learned(pre) and {"test_mlm_accuracy", "test_perplexity"} <= set(pre["test"])
    shared = ["max_steps=30", "eval_every=15", "bootstrap=50", f"init_from={mlm}"]
    full_dir, full = _train("behrt_mortality_small", *shared, f"out={tmp_path / 'full'}")
    lora_dir, lora = _train("behrt_mortality_lora_small", *shared, f"out={tmp_path / 'lora'}")
    for summary in (full, lora):
        assert _learned(summary)
        assert {"test_auroc", "test_auprc", "test_f1", "test_brier"} <= set(summary["test"])
        assert set(summary["baselines"]) == {"bag_of_codes_lr", "prior"}
        assert summary["baselines"]["prior"]["test_auroc"] == 0.5
        assert summary["test_ci"]["test_auroc"]["n_valid"] > 40
    # the same split for model and baselines: the prior's AUPRC is the test prevalence
    assert full["baselines"]["prior"]["test_auprc"] == pytest.approx(full["test"]["test_prevalence"])
    assert full["baselines"] == lora["baselines"]
    assert lora["parameters"]["share"] < 1.0 == full["parameters"]["share"]
    assert (lora_dir / lora["best_checkpoint"] / "adapter" / "adapter_model.safetensors").is_file()
    assert not (full_dir / full["best_checkpoint"] / "adapter").exists()
