"""The benchmark trains every listed model on one split; a failing or missing model is recorded, the rest go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def _corrupt_copy(codes: Path, to: Path) -> Path:
    """The same records with one training record's ages written as text: a real crash inside training."""
    import shutil

    shutil.copytree(codes, to)
    lines = (to / "train.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["ages"] = ["unknown"] * len(first["codes"])
    (to / "train.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    return to


def _bench_config(tmp_path: Path, codes: Path) -> Path:
    bad = tmp_path / "bad_codes"  # written by _corrupt_copy where the benchmark runs
    models = [
        {"name": "prior", "config": str(CONFIGS / "logreg_prior_mortality_small.yaml"), "baseline": True},
        {"name": "logreg", "config": str(CONFIGS / "logreg_mortality_small.yaml"), "baseline": True},
        # a real crash inside training (ages that are not numbers): a failed row, the others go on
        {
            "name": "lstm_bad",
            "config": str(CONFIGS / "lstm_mortality_small.yaml"),
            "overrides": [*FAST["lstm"], f"data.root={bad}"],
        },
        {"name": "missing", "config": str(tmp_path / "no_such_config.yaml")},
        {
            "name": "xgboost",
            "config": str(CONFIGS / "xgboost_mortality_small.yaml"),
            "overrides": FAST["xgboost"],
        },
    ]
    path = tmp_path / "bench.yaml"
    path.write_text(
        json.dumps({"name": "tiny", "data": {"root": str(codes)}, "bootstrap": 50, "models": models})
    )
    return path


def test_bench_table_survives_a_failing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.cli.app import main

    codes = write_codes(tmp_path / "codes")
    _corrupt_copy(codes, tmp_path / "bad_codes")
    out = tmp_path / "bench"
    assert main(["bench", str(_bench_config(tmp_path, codes)), f"out={out}", "--quiet"]) == 0
    data = json.loads((out / "bench.json").read_text())
    rows = {r["model"]: r for r in data["rows"]}
    assert list(rows) == ["prior", "logreg", "lstm_bad", "missing", "xgboost"]
    assert rows["lstm_bad"]["status"] == "failed" and "ValueError" in rows["lstm_bad"]["error"]
    assert rows["missing"]["status"] == "failed" and "config not found" in rows["missing"]["error"]
    for name in ("prior", "logreg", "xgboost"):
        row = rows[name]
        assert row["status"] == "finished"
        for key in (
            "parameters",
            "trainable_parameters",
            "train_seconds",
            "seconds_per_epoch",
            "cpu_seconds",
            "peak_memory_mb",
            "checkpoint_bytes",
        ):
            assert isinstance(row[key], (int, float)), (name, key)
        for metric in ("test_auroc", "test_auprc", "test_f1"):
            assert (
                row[f"{metric}_ci"]["low"] <= row[metric] <= row[f"{metric}_ci"]["high"]
                or metric == "test_f1"
            )
        assert Path(row["run_dir"]).parent == out / "runs"
    assert rows["logreg"].get("best_baseline") is True  # R1 decides the label: logreg beats the prior
    assert rows["prior"]["p_value"] < 0.05 and rows["prior"]["p_value_against"] == "logreg"
    assert isinstance(rows["xgboost"]["p_value"], float)
    assert data["test_records"] == 40
    report = (out / "report.md").read_text()
    assert "lstm_bad" in report and "could not convert string to float" in report and "![ROC" in report
    for png in ("roc_pr.png", "metric_vs_cost.png", "loss_curves.png"):
        assert (out / png).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| logreg (baseline) |" in printed and "failed" in printed
    assert (
        main(["bench", str(_bench_config(tmp_path, codes)), f"out={out}", "--quiet"]) == 2
    )  # never over a benchmark


def test_bench_config_errors_are_one_line(tmp_path: Path) -> None:
    from ehrdebug.errors import UserError
    from recipes.bench.bench import load_bench_config

    path = _bench_config(tmp_path, tmp_path)
    assert [m["name"] for m in load_bench_config(path, ["only=[prior,xgboost]"])["models"]] == [
        "prior",
        "xgboost",
    ]
    assert (
        load_bench_config(path, ["xgboost.model.max_depth=2"])["models"][4]["overrides"][-1]
        == "model.max_depth=2"
    )
    for bad in (["only=[nope]"], ["epochs=3"], ["notakey"]):
        with pytest.raises(UserError):
            load_bench_config(path, bad)


def test_shipped_bench_config_lists_baselines_and_behrt() -> None:
    from recipes.bench.bench import load_bench_config

    config = load_bench_config(CONFIGS / "bench_mortality_small.yaml")
    names = [m["name"] for m in config["models"]]
    assert {"prior", "logreg", "xgboost", "lstm", "med2vec", "behrt_small", "behrt_small_lora"} <= set(names)
    lora = next(m for m in config["models"] if m["name"] == "behrt_small_lora")
    assert lora["init_from"] == "behrt_mlm_small" and names.index("behrt_mlm_small") < names.index(
        "behrt_small_lora"
    )
