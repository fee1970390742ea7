"""``ehrdebug train recipes/configs/llama_coding_lora_small.yaml`` on the shipped coding data, cut to a few dozen
steps: the run logs seed 003's coverage arithmetic at the start and loss vs accuracy at each evaluation, writes
the four test figures, saves its adapter, and the doctor reads the run. Slow (about a minute on one core)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_small_config_trains_end_to_end(tmp_path, capsys) -> None:
    from ehrdebug.cli.app import main
    from probes.data_coverage import TrainingPlan, coverage_figures

    run = tmp_path / "run"
    code = main(["train", "recipes/configs/llama_coding_lora_small.yaml", f"out={run}", "max_steps=24", "eval_every=12",
                 "num_eval_generations=8", "num_test_generations=32", "max_length=128"])  # fmt: skip
    assert code in (0, None), capsys.readouterr().err[-2000:]
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    test = summary["test"]
    for key in ("test_loss", "test_strict_accuracy", "test_code_f1", "test_format_validity"):
        assert key in test and test[key] == test[key]  # present and not NaN
    assert (
        test["test_loss"] > 0
        and 0 <= test["test_strict_accuracy"] <= 1
        and 0 <= test["test_format_validity"] <= 1
    )
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    findings = [e for e in events if e["kind"] == "finding"]
    coverage = [f for f in findings if f["probe"] == "data.coverage" and f["step"] == 0]
    expected = coverage_figures(1175, TrainingPlan(per_device_batch=8, grad_accum=1, epochs=3, max_steps=24))
    assert (
        coverage
        and coverage[0]["evidence"]["optimizer_steps_per_epoch"]
        == expected["optimizer_steps_per_epoch"]
        == 147
    )
    assert coverage[0]["evidence"]["samples_used_per_epoch"] == 1175
    assert sorted(f["step"] for f in findings if f["probe"] == "metrics.loss_vs_accuracy") == [12, 24]
    assert (run / "checkpoints" / "step-24" / "adapter" / "adapter_config.json").is_file()

    from probes.doctor import diagnose

    report = diagnose(run)
    probes = {f.probe: f for f in report.findings}
    assert "metrics.loss_vs_accuracy" in probes and "data.coverage" in probes
    assert probes["model.trainable"].severity.name == "OK", probes[
        "model.trainable"
    ].title  # new rows trained and moved
