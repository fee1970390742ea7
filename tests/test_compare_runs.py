"""``ehrdebug compare RUN RUN``: the benchmark's table and plots from existing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from recipes.baselines.registry import load_baseline_config, train_baseline

    codes = write_codes(tmp_path_factory.mktemp("codes"))
    root = tmp_path_factory.mktemp("runs")
    out = []
    for name, cfg in (
        ("prior", "logreg_prior_mortality_small.yaml"),
        ("xgboost", "xgboost_mortality_small.yaml"),
    ):
        config = load_baseline_config(
            CONFIGS / cfg, [f"data.root={codes}", "bootstrap=50", *FAST.get(name, [])]
        )
        out.append(train_baseline(config, root / name))
    return out


def test_compare_builds_the_table_and_plots(runs: list[Path], tmp_path: Path) -> None:
    from recipes.bench.compare import compare_runs

    result = compare_runs(runs, out_dir=tmp_path / "cmp", bootstrap=50)
    rows = {r["model"]: r for r in result.rows}
    assert set(rows) == {"prior", "xgboost"}
    assert (
        rows["xgboost"]["best_baseline"] is True
        and rows["xgboost"]["test_auroc"] > rows["prior"]["test_auroc"]
    )
    assert rows["prior"]["p_value_against"] == "xgboost" and 0 <= rows["prior"]["p_value"] <= 1
    assert rows["xgboost"]["checkpoint_bytes"] > 0 and rows["prior"]["parameters"] == 1
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["model"] for r in data["rows"]] == [r["model"] for r in result.rows]
    for png in ("roc_pr.png", "metric_vs_cost.png", "loss_curves.png"):
        assert (tmp_path / "cmp" / png).stat().st_size > 1000
    assert "| xgboost (baseline) |" in result.markdown()


def test_compare_cli_prints_and_refuses_bad_input(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main

    assert main(["compare", *map(str, runs)]) == 0
    assert "| prior (baseline) |" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "nope")]) == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "full")]) == 2
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
