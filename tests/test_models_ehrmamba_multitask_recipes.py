"""EHRMamba multitask prompted fine-tuning end to end: from a pretraining run with LoRA on a slice of the shipped
records, and from scratch on all of them; per-task figures in metrics_summary.json, per-task predictions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TINY = ["threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1",
        "model.state_size=8", "max_length=48", "max_minutes=null"]  # fmt: skip
TASKS = ("mortality", "heart_failure")


def _train(name: str, *overrides: str) -> tuple[Path, dict, list[dict]]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run = run_training(load_recipe_config(CONFIGS / f"{name}.yaml", [*TINY, *overrides]))
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return run, json.loads((run / "artifacts" / "metrics_summary.json").read_text()), events


def _check_test_block(run: Path, summary: dict, n_test: int) -> None:
    test = summary["test"]
    for task in TASKS:
        for metric in ("auroc", "auprc", "f1"):
            assert math.isfinite(test[f"test_{metric}_{task}"])
        rows = (run / "artifacts" / "evidence" / f"predictions-test-{task}.jsonl").read_text().splitlines()
        assert len(rows) == n_test
    assert {k: test[k] for k in ("test_auroc", "test_auprc", "test_f1")} == {
        k: test[f"{k}_mortality"] for k in ("test_auroc", "test_auprc", "test_f1")
    }
    header = json.loads((run / "artifacts" / "evidence" / "predictions-test.json").read_text())
    assert header["task"] == "mortality" and header["label_field"] == "mortality"


@pytest.mark.slow
def test_pretrain_then_multitask_lora_with_per_task_metrics(tmp_path: Path) -> None:
    pre, _, _ = _train("ehrmamba_pretrain_small", "data.max_train=160", "max_steps=20", "eval_every=20",
                       "runtime_probe=false", f"out={tmp_path / 'pre'}")  # fmt: skip
    run, summary, events = _train("ehrmamba_multitask_small", "data.max_train=160", "max_steps=12", "eval_every=6",
                                  "bootstrap=20", "use_lora=true", f"init_from={pre}", f"out={tmp_path / 'mt'}")  # fmt: skip
    runtime = [e for e in events if e["kind"] == "finding" and e.get("probe") == "runtime.mamba_fast_path"]
    assert runtime and runtime[0]["evidence"]["step_seconds"] > 0  # the probe timed the prompted model
    evals = [e for e in events if e["kind"] == "eval"]
    assert len(evals) == 2
    for e in evals:
        metrics = e.get("metrics", e)
        assert math.isfinite(metrics["eval_auroc_mean"]) and math.isfinite(
            metrics["eval_auroc_heart_failure"]
        )
    assert summary["early_stopping_metric"] == "eval_auroc_mean" and summary["tokens"]["init_from"]
    assert summary["parameters"]["share"] < 1.0  # LoRA: the backbone's projections are frozen
    _check_test_block(run, summary, 160)
    assert {
        "test_auroc",
        "test_auroc_mortality",
        "test_auroc_heart_failure",
        "test_auprc_heart_failure",
    } <= set(summary["test_ci"])
    assert set(summary["baselines"]) == {"bag_of_codes_lr", "prior"}
    assert set(summary["baselines_by_task"]) == set(TASKS)


@pytest.mark.slow
def test_multitask_trains_on_all_shipped_records(tmp_path: Path) -> None:
    run, summary, _ = _train("ehrmamba_multitask_small", "init_from=null", "runtime_probe=false", "max_steps=30",
                             "eval_every=30", "bootstrap=0", "baselines=false", f"out={tmp_path / 'mt'}")  # fmt: skip
    assert summary["steps"] == 30
    _check_test_block(run, summary, 160)
    losses = [row["loss"] for row in summary["history"]["train"]]
    assert all(math.isfinite(v) for v in losses) and sum(losses[-5:]) < sum(losses[:5])


@pytest.mark.slow
def test_a_meds_task_label_is_a_field_task_with_meds_predictions(tmp_path: Path) -> None:
    """``ehrdebug data build codes --source meds ROOT --labels TASK`` records carry ``label``: a ``field`` task."""
    pytest.importorskip("meds_testing_helpers.dataset_generator")
    import sys

    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).parent))  # the MEDS task writer of the CEHR/Mamba MEDS tests
    from test_meds_code_models import TASK, generate_meds_root, write_task

    from ehrdebug.cli.app import main

    root = tmp_path / "root"
    generate_meds_root(root)
    write_task(root)
    codes = tmp_path / "codes"
    assert (
        main(["data", "build", "codes", str(root), "--source", "meds", "--labels", TASK, "--out", str(codes)])
        == 0
    )
    tasks = 'tasks=[{name: next_event, token: "[NE]", source: field, field: label}]'
    run, summary, _ = _train("ehrmamba_multitask_small", tasks, f"data.codes_dir={codes}", "init_from=null",
                             "runtime_probe=false", "max_steps=8", "eval_every=8", "bootstrap=0", f"out={tmp_path / 'mt'}")  # fmt: skip
    test = [json.loads(line) for line in (codes / "test.jsonl").read_text().splitlines()]
    assert (
        math.isfinite(summary["test"]["test_auroc_next_event"])
        and summary["test"]["test_auroc"] == summary["test"]["test_auroc_next_event"]
    )
    table = pq.read_table(run / summary["predictions"]["next_event"]).to_pylist()
    assert [(r["subject_id"], r["prediction_time"].isoformat()) for r in table] == [
        (r["patient_id"], r["prediction_time"]) for r in test
    ]
    assert [bool(r["boolean_value"]) for r in table] == [bool(r["label"]) for r in test]
