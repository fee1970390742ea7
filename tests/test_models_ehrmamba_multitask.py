"""EHRMamba multitask prompted fine-tuning on the training layer: one row per task with its token first, label
sources from a registry, one head per task that follows the token, per-task metrics, a learnable task learned."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from ehrdebug.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "recipes" / "configs" / "ehrmamba_multitask_small.yaml"
TINY = ["data.max_train=160", "threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1",
        "model.state_size=8", "max_length=48", "max_minutes=null", "init_from=null", "runtime_probe=false"]  # fmt: skip
SYNTH_TASKS = ('tasks=[{name: has_x, token: "[X]", source: field, field: has_x},'
               ' {name: hf_next, token: "[HF]", source: next_visit_prefix, prefixes: ["428"]}]')  # fmt: skip


def _config(*overrides: str) -> dict[str, Any]:
    from recipes.train.config import load_recipe_config

    return load_recipe_config(CONFIG, [*TINY, *overrides])


def _task() -> Any:
    from recipes.train.task import get_task

    return get_task("ehrmamba_multitask")


def _synthetic(root: Path, seed: int = 0) -> Path:
    """Codes records whose two tasks are easy: ``has_x`` (code X occurs) and a next visit holding 428.x
    exactly when code Y occurs in the history (anything else in the timeline is noise)."""
    rng = random.Random(seed)
    codes = [f"C{i}" for i in range(10)]
    folder = root / "codes"
    folder.mkdir(parents=True)
    for split, n in (("train", 240), ("validation", 80), ("test", 80)):
        rows = []
        for pid in range(n):
            first, second = rng.sample(codes, 3), rng.sample(codes, 3)
            has_x, has_y = rng.random() < 0.5, rng.random() < 0.4
            if has_x:  # both in the last visit, never on the same position
                second[0] = "X"
            if has_y:
                second[rng.randrange(1, 3)] = "Y"
            gap = rng.randint(1, 400)
            rows.append({"patient_id": f"{split}-{pid}", "codes": first + second, "ages": [60] * 6,
                         "visits": [0, 0, 0, 1, 1, 1], "days": [0, 0, 0, gap, gap, gap], "has_x": int(has_x),
                         "next_visit_codes": ["428.0", "401.9"] if has_y else ["401.9"]})  # fmt: skip
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_label_sources_read_fields_and_next_visit_prefixes() -> None:
    from recipes.train.ehrmamba_multitask_labels import LABEL_SOURCES, TaskSpec

    assert set(LABEL_SOURCES) >= {"field", "next_visit_prefix"}
    mor = TaskSpec(name="mortality", token="[MOR]", source="field", field="mortality")
    hf = TaskSpec(name="hf", token="[HF]", source="next_visit_prefix", prefixes=["428"])
    assert [mor.label(r) for r in ({"mortality": 1}, {"mortality": 0}, {}, {"mortality": None})] == [
        1,
        0,
        None,
        None,
    ]
    assert hf.label({"next_visit_codes": ["401.9", "428.0"]}) == 1
    assert hf.label({"next_visit_codes": ["ICD9CM//428.31"]}) == 1  # a vocabulary prefix is looked through
    assert (
        hf.label({"next_visit_codes": ["401.9", "4289"]}) == 1
        and hf.label({"next_visit_codes": ["042"]}) == 0
    )
    assert hf.label({"next_visit_codes": []}) is None and hf.label({}) is None  # no next visit: no row


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ('[{name: a, token: "[A]", source: nowhere, field: x}]', "unknown label source"),
        ('[{name: a, token: "[A]", source: next_visit_prefix}]', "needs prefixes"),
        ('[{name: a, token: "[A]", source: field}]', "needs field"),
        ('[{name: a, token: "[A]", source: next_visit_prefix, prefixes: [""]}]', "empty prefix"),
        (
            '[{name: a, token: "[A]", source: field, field: x}, {name: b, token: "[A]", source: field, field: y}]',
            "own token",
        ),
        ('[{name: mean, token: "[A]", source: field, field: x}]', "lower-case"),
        ('[{name: a, token: "[VE]", source: field, field: x}]', "new bracketed"),
        ("[]", "at least 1"),
    ],
)
def test_bad_task_lists_are_one_line_errors_when_the_config_loads(tasks: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        _config(f"tasks={tasks}")


def test_each_record_gives_one_row_per_labelled_task_with_its_token_first() -> None:
    task, config = _task(), _config()
    model, tok, info = task.build(config, None)
    assert info["tasks"] == {"mortality": "[MOR]", "heart_failure": "[HF]"}
    assert model.config.task_token_ids == tok.convert_tokens_to_ids(["[MOR]", "[HF]"])
    assert model.classifier.out_features == 2  # one head per task
    records = task.records(config, "validation")[:12]
    rows = task.features(records, tok, config)
    hf = [int(any(c.startswith("428") for c in r["next_visit_codes"])) for r in records]
    assert [r["label"] for r in rows if r["task"] == 0] == [r["mortality"] for r in records]
    assert [r["label"] for r in rows if r["task"] == 1] == hf
    assert {tuple(tok.convert_ids_to_tokens(r["input_ids"][:1])) for r in rows} == {("[MOR]",), ("[HF]",)}
    by_task = [[r for r in rows if r["task"] == t] for t in (0, 1)]
    for mor_row, hf_row in zip(*by_task, strict=True):  # the same timeline after the token
        assert (
            mor_row["input_ids"][1:] == hf_row["input_ids"][1:]
            and mor_row["input_ids"][0] != hf_row["input_ids"][0]
        )
    batch = task.collator(tok, model, config, train=True)(rows)
    assert model.task_of(batch["input_ids"], None, len(rows), "cpu").tolist() == [r["task"] for r in rows]
    model(**batch).loss.backward()


def test_training_batches_mix_the_tasks() -> None:
    from recipes.train.data import epoch_batches

    task, config = _task(), _config()
    _, tok, _ = task.build(config, None)
    data = task.datasets(config, tok)
    assert len(data.train) == 2 * 160  # every shipped record has both labels
    batches = epoch_batches(data.train, int(config["batch_size"]), int(config["seed"]), 0)
    mixed = [len({data.train[i]["task"] for i in b}) == 2 for b in batches]
    assert all(mixed)


@pytest.mark.parametrize("heads", ["per_task", "shared"])
def test_the_task_token_selects_the_head_and_conditions_the_state(heads: str) -> None:
    import torch

    task, config = _task(), _config(f"task_heads={heads}")
    model, tok, _ = task.build(config, None)
    model.eval()
    records = task.records(config, "validation")[:6]
    collate = task.collator(tok, model, config, train=False)
    rows = task.features(records, tok, config)
    mor = collate([r for r in rows if r["task"] == 0])
    hf = collate([r for r in rows if r["task"] == 1])
    assert torch.equal(mor["input_ids"][:, 1:], hf["input_ids"][:, 1:])
    with torch.no_grad():
        before = (model(**mor).logits.clone(), model(**hf).logits.clone())
        assert not torch.equal(before[0], before[1])  # changing the task token changes the output
        if heads == "per_task":  # the [HF] rows read the second head only
            model.classifier.weight[1].zero_()
            model.classifier.bias[1].fill_(3.0)
            after = (model(**mor).logits, model(**hf).logits)
            assert torch.equal(after[0], before[0])
            assert torch.allclose(after[1], torch.full_like(after[1], 3.0))
        else:  # one head: only the state tells the tasks apart (an untrained scan carries the token faintly)
            assert model.classifier.out_features == 1


def test_evaluation_reports_every_task_and_their_mean() -> None:
    task, config = _task(), _config()
    model, tok, _ = task.build(config, None)
    records = task.records(config, "validation")
    metrics, samples = task.evaluate(model, tok, records, config, "cpu", prefix="eval")
    for name in ("mortality", "heart_failure"):
        for metric in ("auroc", "auprc", "f1", "brier"):
            assert math.isfinite(metrics[f"eval_{metric}_{name}"])
    assert metrics["eval_auroc"] == metrics["eval_auroc_mortality"]  # unsuffixed: the primary task
    assert metrics["eval_auroc_mean"] == pytest.approx(
        (metrics["eval_auroc_mortality"] + metrics["eval_auroc_heart_failure"]) / 2
    )
    assert {s["prompt"].split()[0] for s in samples} == {"[MOR]", "[HF]"}
    assert config["early_stopping"]["metric"] == "eval_auroc_mean"


@pytest.mark.slow
def test_tasks_with_a_strong_signal_are_learned_and_tested_per_task(tmp_path: Path) -> None:
    from recipes.train.loop import run_training

    codes = _synthetic(tmp_path)
    config = _config(SYNTH_TASKS, f"data.codes_dir={codes}", "data.max_train=null", "max_length=24", "lr=5e-3", "warmup_steps=5",
                     "max_steps=100", "eval_every=50", "bootstrap=0", "baselines=false", f"out={tmp_path / 'run'}")  # fmt: skip
    run = run_training(config)
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    test = summary["test"]
    assert test["test_auroc_has_x"] > 0.8 and test["test_auroc_hf_next"] > 0.8, test
    assert test["test_auroc"] == test["test_auroc_has_x"] and test["test_f1"] == test["test_f1_has_x"]
    kept = {p.name for p in (run / "artifacts").rglob("predictions-test*.jsonl")}
    assert kept == {
        "predictions-test.jsonl",
        "predictions-test-has_x.jsonl",
        "predictions-test-hf_next.jsonl",
    }
    rows = (run / "artifacts" / "evidence" / "predictions-test-hf_next.jsonl").read_text().splitlines()
    assert len(rows) == 80 and {"patient_id", "y_true", "y_prob"} <= set(json.loads(rows[0]))
    # the doctor's coverage counts the rows trained on (240 records x 2 tasks), not the records
    from probes.data_suite import run_data_probes_for_run

    assert json.loads((run / "run.json").read_text())["train_examples"] == 480
    coverage = [f for f in run_data_probes_for_run(str(run)) if f.probe == "data.coverage"]
    assert coverage and coverage[0].evidence["samples"] == 480, [f.evidence for f in coverage]


@pytest.mark.parametrize("lora", [False, True])
def test_fine_tuning_from_a_pretrained_timeline_model_adds_the_new_task_tokens(
    tmp_path: Path, lora: bool
) -> None:
    """[HF] is not in the pretraining vocabulary: its row is added (and read) and LoRA trains it with the heads."""
    from recipes.train.config import load_recipe_config
    from recipes.train.engine import apply_lora
    from recipes.train.task import get_task

    pre_task = get_task("ehrmamba_pretrain")
    pre_config = load_recipe_config(REPO / "recipes" / "configs" / "ehrmamba_pretrain_small.yaml", TINY[:-2])
    pre_model, pre_tok, _ = pre_task.build(pre_config, None)
    assert "[HF]" not in pre_tok.get_vocab()
    pre_model.save_pretrained(str(tmp_path / "pre"))
    pre_tok.save_pretrained(str(tmp_path / "pre"))
    task = _task()
    config = _config(f"init_from={tmp_path / 'pre'}", f"use_lora={str(lora).lower()}")
    model, tok, info = task.build(config, None)
    assert len(tok) == len(pre_tok) + 1 and model.config.vocab_size == len(tok)
    assert info["init_from"] == str(tmp_path / "pre")
    if lora:
        model = apply_lora(model, config, task)
    rows = task.features(task.records(config, "validation")[:8], tok, config)
    batch = task.collator(tok, model, config, train=True)(rows)
    model(**batch).loss.backward()
    trained = {
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is not None and bool(p.grad.abs().sum())
    }
    assert any("code_embed" in n for n in trained) and any("classifier" in n for n in trained)
    if lora:
        assert any("lora_" in n for n in trained) and not any("in_proj.base_layer" in n for n in trained)


def test_the_runtime_probe_times_a_prompted_multitask_model() -> None:
    """Its random timing rows start with a task token: the model refuses rows that start with none."""
    from probes.runtime import mamba_fast_path

    task, config = _task(), _config()
    model, _, _ = task.build(config, None)
    findings = mamba_fast_path(model, time_it=True, seq_len=12, batch_size=2, steps=1, forward=False)
    timed = [f for f in findings if f.probe == "runtime.mamba_fast_path" and f.evidence.get("step_seconds")]
    assert timed and timed[0].evidence["step_seconds"] > 0
