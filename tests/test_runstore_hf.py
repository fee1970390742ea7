"""Reading plain HF Trainer output dirs, and EhrDebugCallback inside a real Trainer run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.runstore import open_run


def _state(log_history: list[dict], global_step: int, max_steps: int = 0, **extra: object) -> str:
    return json.dumps({"global_step": global_step, "max_steps": max_steps, "log_history": log_history, **extra})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_top_level_state_with_several_eval_sets(tmp_path: Path) -> None:
    logs = []
    for step in range(10, 101, 10):
        logs.append({"loss": 2.0 / (step / 10), "learning_rate": 1e-4, "epoch": step / 100, "step": step})
        if step % 50 == 0:
            logs.append({"eval_val_loss": 1.0 - step / 1000, "eval_val_runtime": 0.5, "epoch": step / 100, "step": step})
            logs.append({"eval_test_loss": 1.1 - step / 1000, "epoch": step / 100, "step": step})
    logs.append({"train_runtime": 12.0, "train_loss": 0.6, "epoch": 1.0, "step": 100})
    _write(tmp_path / "trainer_state.json", _state(logs, 100, 100))
    _write(tmp_path / "checkpoint-100" / "config.json", json.dumps({"architectures": ["BartForConditionalGeneration"]}))
    run = open_run(tmp_path)
    assert run.kind == "hf" and run.status == "finished"
    assert run.architecture == "BartForConditionalGeneration"
    history = run.history()
    assert history.train.steps == list(range(10, 101, 10))
    assert set(history.evals) == {"eval_val_loss", "eval_test_loss"}
    assert history.evals["eval_val_loss"].values == [0.95, 0.9]
    assert history.meta["train_loss"] == 0.6  # the end-of-training summary is not a curve point
    assert "eval_val_runtime" in history.metrics
    assert run.best_eval() == ("eval_test_loss", 100, 1.0)
    assert [c.step for c in run.checkpoints()] == [100]


def test_in_progress_run_reads_the_most_advanced_checkpoint(tmp_path: Path) -> None:
    early = [{"loss": 1.0, "step": 5}, {"eval_loss": 0.9, "step": 5}]
    later = early + [{"loss": 0.8, "step": 10}, {"eval_loss": 0.85, "step": 10}]
    _write(tmp_path / "checkpoint-5" / "trainer_state.json", _state(early, 5, 100))
    _write(tmp_path / "checkpoint-10" / "trainer_state.json", _state(later, 10, 100))
    run = open_run(tmp_path)
    assert run.status == "live"  # files are fresh and max_steps not reached
    assert run.history().train.steps == [5, 10]
    assert run.history().evals["eval_loss"].values == [0.9, 0.85]


def test_resumed_run_deduplicates_replayed_steps(tmp_path: Path) -> None:
    """Trained to 30, crashed, resumed from checkpoint-20: steps 21-30 are logged twice; the last write wins."""
    first = [{"loss": 1.0 - s / 100, "step": s} for s in range(10, 31, 10)]
    resumed = [{"loss": 1.0 - s / 100, "step": s} for s in (10, 20)] + [{"loss": 0.5, "step": 30}, {"loss": 0.4, "step": 40}]
    _write(tmp_path / "checkpoint-20" / "trainer_state.json", _state(first[:2], 20, 40))
    _write(tmp_path / "trainer_state.json", _state(resumed, 40, 40))
    history = open_run(tmp_path).history()
    assert history.train.steps == [10, 20, 30, 40]
    assert history.train.values[2] == 0.5


def test_no_eval_at_all(tmp_path: Path) -> None:
    _write(tmp_path / "trainer_state.json", _state([{"loss": 1.0, "step": 1}, {"loss": 0.9, "step": 2}], 2, 2))
    run = open_run(tmp_path)
    assert run.history().evals == {} and run.best_eval() is None


def test_callback_writes_a_run_from_a_real_trainer(tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    from ehrdebug.findings import Finding, Severity
    from ehrdebug.runstore import EhrDebugCallback

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))
    rows = [{"input_ids": torch.randint(0, 32, (8,)).tolist()} for _ in range(16)]
    for row in rows:
        row["labels"] = row["input_ids"]
    seen_steps: list[int] = []

    def probe(model: object, tokenizer: object, step: int, metrics: dict) -> list[Finding]:
        seen_steps.append(step)
        return [Finding("test.eval_seen", Severity.WARN, "eval loss seen", {"eval_loss": metrics.get("eval_loss")})]

    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4, logging_steps=1,
                             eval_strategy="steps", eval_steps=3, save_steps=3, report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows[:4],
                      callbacks=[EhrDebugCallback(tmp_path / "run", probes=[probe], task="causal-lm")])
    trainer.train()
    run = open_run(tmp_path / "run")
    assert run.status == "finished" and run.info["architecture"] == "LlamaForCausalLM"
    assert run.history().train.steps == [1, 2, 3, 4, 5, 6]
    assert run.history().evals["eval_loss"].steps == [3, 6]
    assert seen_steps == [3, 6]
    assert len(run.findings()) == 2 and run.alerts()
    assert [e["step"] for e in run.events(kinds=("checkpoint",))] == [3, 6]
    # The Trainer's own output dir reads as an HF run with the same curve.
    hf_run = open_run(tmp_path / "out")
    assert hf_run.kind == "hf"
    assert hf_run.history().train.values == pytest.approx(run.history().train.values)
