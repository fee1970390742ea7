"""On the shipped data, XGBoost and the LSTM clear the prior: AUROC well above 0.5, AUPRC above prevalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["xgboost_mortality_small.yaml", "lstm_mortality_small.yaml"])
def test_baseline_beats_the_prior_on_shipped_data(config_name: str, tmp_path: Path) -> None:
    from recipes.baselines.registry import load_baseline_config, train_baseline

    run = train_baseline(load_baseline_config(CONFIGS / config_name, ["bootstrap=0"]), tmp_path / "run")
    test = json.loads((run / "artifacts" / "metrics_summary.json").read_text())["test"]
    assert test["test_auroc"] > 0.6, test
    assert test["test_auprc"] > 1.3 * test["test_prevalence"], test
