"""data.coverage: seed 003's arithmetic, checked against what a real HF Trainer does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Severity
from probes.data_coverage import TrainingPlan, coverage_figures, plan_from_mapping, probe_coverage

LLAMA = Path(__file__).resolve().parent / "fixtures" / "dataprobe" / "llamamodel"


def test_seed003_numbers_and_where_the_report_went_wrong():
    # 1,602 samples, per-device batch 2, accumulation 4, 3 epochs, dataloader_drop_last=True
    fig = coverage_figures(1602, TrainingPlan(per_device_batch=2, grad_accum=4, epochs=3, drop_last=True))
    assert fig["effective_batch"] == 8
    assert fig["micro_batches_per_epoch_per_device"] == 801
    assert fig["optimizer_steps_per_epoch"] == 201  # not 200: the 801st micro-batch gets its own step
    assert fig["total_optimizer_steps"] == 603  # the run's 603 steps, not "600 + 3 logging steps"
    assert fig["samples_dropped_per_epoch"] == 0  # drop_last acts on micro-batches of 2; 1602 is even
    assert fig["samples_used_per_epoch"] == 1602 and fig["sample_exposures"] == 4806
    assert fig["times_each_sample_seen"] == 3.0
    assert (fig["micro_batches_in_last_step"], fig["samples_in_last_step"]) == (1, 2)
    # the report's own (naive) arithmetic
    assert (fig["naive_steps_per_epoch"], fig["naive_total_steps"], fig["naive_samples_dropped_per_epoch"]) == (200, 600, 2)
    findings = probe_coverage(1602, TrainingPlan(2, 4, 1, 3, True))
    assert len(findings) == 1 and findings[0].severity == Severity.INFO
    assert "201 steps/epoch, 603 steps in all" in findings[0].title
    assert any("naive arithmetic" in n for n in findings[0].evidence["notes"])


def test_drop_last_warnings_and_failures():
    small = probe_coverage(3, TrainingPlan(per_device_batch=4, drop_last=True))
    assert small[-1].severity == Severity.FAIL and "no training batch" in small[-1].title
    lossy = probe_coverage(45, TrainingPlan(per_device_batch=8, drop_last=True))
    drop = [f for f in lossy if "discards" in f.title]
    assert drop[0].severity == Severity.WARN and drop[0].evidence["samples_dropped_per_epoch"] == 5
    assert "check-drop-last" in drop[0].recipes
    accum = probe_coverage(20, TrainingPlan(per_device_batch=4, grad_accum=8))
    assert any("one small optimizer step per epoch" in f.title for f in accum)
    clean = probe_coverage(64, TrainingPlan(per_device_batch=4, grad_accum=2, epochs=2))
    assert [f.severity for f in clean] == [Severity.OK]
    two = coverage_figures(1603, TrainingPlan(per_device_batch=2, grad_accum=4, devices=2, drop_last=False))
    assert (two["micro_batches_per_epoch_per_device"], two["samples_repeated_per_epoch"]) == (401, 1)


def test_plan_from_training_args_and_run_json():
    args = {"output_dir": "x", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
            "num_train_epochs": 3.0, "dataloader_drop_last": True, "max_steps": -1}
    plan = plan_from_mapping({"meta": {"training_args": args}})
    assert (plan.per_device_batch, plan.grad_accum, plan.epochs, plan.drop_last) == (2, 4, 3.0, True)


class _Rows:
    def __init__(self, n: int) -> None:
        self.rows = [{"input_ids": [1, 5 + i % 7, 9, 2], "labels": [1, 5 + i % 7, 9, 2]} for i in range(n)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _trainer_run(tmp_path: Path, n: int, plan: TrainingPlan) -> dict:
    """Train a tiny Llama with the real HF Trainer; count optimizer steps and samples through forward()."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(LLAMA)))
    seen = {"samples": 0, "epoch_steps": []}

    def count(module, args, kwargs):  # samples the model is really trained on (accelerate prefetches a batch)
        seen["samples"] += kwargs["input_ids"].shape[0]

    model.register_forward_pre_hook(count, with_kwargs=True)

    def collate(features: list[dict]) -> dict:
        return {k: torch.tensor([f[k] for f in features]) for k in ("input_ids", "labels")}

    class EpochSteps(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            seen["epoch_steps"].append(state.global_step)

    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=plan.per_device_batch,
        gradient_accumulation_steps=plan.grad_accum, num_train_epochs=plan.epochs, max_steps=plan.max_steps,
        dataloader_drop_last=plan.drop_last, save_strategy="no", report_to=[], logging_strategy="no",
        use_cpu=True, learning_rate=1e-3, disable_tqdm=True, remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=_Rows(n), data_collator=collate, callbacks=[EpochSteps()])
    trainer.train()
    return {"global_step": trainer.state.global_step, **seen}


@pytest.mark.parametrize(
    ("n", "plan"),
    [
        (42, TrainingPlan(per_device_batch=2, grad_accum=4, epochs=3, drop_last=True)),  # seed 003's ratios: 21 % 4 == 1
        pytest.param(43, TrainingPlan(per_device_batch=2, grad_accum=4, epochs=3, drop_last=True),
                     marks=pytest.mark.slow),  # one sample really dropped each epoch
        pytest.param(43, TrainingPlan(per_device_batch=4, grad_accum=3, epochs=2.5, drop_last=False),
                     marks=pytest.mark.slow),  # partial last epoch, last micro-batch of 3
    ],
)
def test_figures_equal_a_real_trainer_run(tmp_path, n, plan):
    fig = coverage_figures(n, plan)
    run = _trainer_run(tmp_path, n, plan)
    assert run["global_step"] == fig["total_optimizer_steps"]
    assert run["epoch_steps"][0] == fig["optimizer_steps_per_epoch"]
    assert run["samples"] == fig["sample_exposures"]
    if plan.drop_last and n == 42:
        assert fig["naive_total_steps"] != run["global_step"]  # 15 naive vs 18 real


def test_check_data_cli_coverage_from_training_args(tmp_path, capsys):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"note {i}", "label": i % 2}) + "\n" for i in range(1602)))
    args = tmp_path / "training_args.json"
    args.write_text(json.dumps({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
                                "num_train_epochs": 3, "dataloader_drop_last": True}))
    code = main(["check", "data", "--train", str(train), "--training-args", str(args), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    cov = [f for f in report["findings"] if f["probe"] == "data.coverage"]
    assert cov[0]["evidence"]["total_optimizer_steps"] == 603
    # a flag overrides the file: batch 8 with drop_last drops 1602 % 8 = 2 (info, under 5%)
    main(["check", "data", "--train", str(train), "--training-args", str(args), "--per-device-batch", "8",
          "--grad-accum", "1", "--format", "json"])
    cov = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["probe"] == "data.coverage"]
    assert cov[0]["evidence"]["samples_dropped_per_epoch"] == 2
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"config": {"training_args": json.loads(args.read_text())}}))
    main(["check", "data", "--train", str(train), "--training-args", str(run_dir), "--format", "json"])
    cov = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["probe"] == "data.coverage"]
    assert cov[0]["evidence"]["total_optimizer_steps"] == 603
    (tmp_path / "empty.json").write_text(json.dumps({"lr": 1e-4}))
    assert main(["check", "data", "--train", str(train), "--training-args", str(tmp_path / "empty.json")]) == 2
    assert main(["check", "data", "--train", str(train), "--training-args", str(tmp_path / "nope.json")]) == 2
    assert main(["check", "data", "--train", str(train), "--per-device-batch", "0"]) == 2
