"""BEHRT tasks on the training layer, tiny versions (seconds each): MLM masking, next visit, mortality
fine-tuning from an MLM run (full and LoRA), test figures and baselines in metrics_summary, MEDS predictions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "data.max_train=96", "batch_size=16", "log_every=1", "threads=1", "max_steps=6", "eval_every=3"]  # fmt: skip


def _config(name: str, *overrides: str) -> dict:
    from recipes.train.config import load_recipe_config

    few = ["bootstrap=20"] if "mortality" in name else []  # fewer bootstrap resamples: seconds, not tens
    return load_recipe_config(CONFIGS / f"{name}.yaml", [*TINY, *few, *overrides])


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recipes.train.loop import run_training

    return run_training(_config("behrt_mlm_small", f"out={tmp_path_factory.mktemp('mlm') / 'run'}"))


def _summary(run: Path) -> dict:
    return json.loads((run / "artifacts" / "metrics_summary.json").read_text())


def test_mlm_batches_mask_15_percent_80_10_10_and_never_special_tokens() -> None:
    import torch

    from ehrdebug.codetok import MASK_ID, SPECIAL_TOKENS
    from recipes.train.task import get_task

    task, config = get_task("behrt_mlm"), _config("behrt_mlm_small", "data.max_train=null")
    tokenizer = task.tokenizer(config, None)
    features = task.datasets(config, tokenizer).train
    torch.manual_seed(0)
    batch = task.collator(tokenizer, None, config, train=True)(features)
    original = task.batch(features)["input_ids"]
    eligible = (original >= len(SPECIAL_TOKENS)) & batch["attention_mask"].bool()
    chosen = batch["labels"] != -100
    assert not (chosen & ~eligible).any()  # never [CLS], [VS] or padding
    assert torch.equal(batch["labels"][chosen], original[chosen]) and (batch["labels"][~chosen] == -100).all()
    rate = chosen.sum().item() / eligible.sum().item()
    assert 0.13 < rate < 0.17, rate
    masked = (batch["input_ids"] == MASK_ID) & chosen
    kept = (batch["input_ids"] == original) & chosen
    swapped = chosen & ~masked & ~kept
    n = chosen.sum().item()
    assert 0.75 < masked.sum().item() / n < 0.85 and 0.06 < swapped.sum().item() / n < 0.14, (masked.sum(), swapped.sum(), n)
    assert (batch["input_ids"][swapped] >= len(SPECIAL_TOKENS)).all()  # a random code, never a special token
    assert "special_tokens_mask" not in batch
    again = task.collator(tokenizer, None, config, train=False)
    assert torch.equal(again(features[:32])["labels"], again(features[:32])["labels"])  # evaluation masks are fixed


def test_mlm_run_reports_masked_accuracy_and_perplexity(mlm_run: Path) -> None:
    summary = _summary(mlm_run)
    assert {"test_mlm_accuracy", "test_perplexity"} <= set(summary["test"])
    assert 1 < summary["test"]["test_perplexity"] < 10_000
    info = json.loads((mlm_run / "run.json").read_text())
    assert info["architecture"] == "behrt" and info["task"] == "mlm" and info["parameters"]["share"] == 1.0
    assert (mlm_run / "checkpoints" / "step-6" / "tokenizer.json").is_file()


def test_nextvisit_run_reports_aps_auroc_recall_beside_the_frequency_baseline(tmp_path: Path) -> None:
    from recipes.train.loop import run_training

    run = run_training(_config("behrt_nextvisit_small", f"out={tmp_path / 'nv'}"))
    test = _summary(run)["test"]
    for name in ("aps", "micro_auroc", "recall_at_10", "recall_at_20"):
        assert 0 <= test[f"test_{name}"] <= 1 and 0 <= test[f"test_frequency_{name}"] <= 1
    assert test["test_recall_at_20"] >= test["test_recall_at_10"]


def test_finetuning_starts_from_the_mlm_encoder(mlm_run: Path) -> None:
    from safetensors.torch import load_file

    from recipes.train.task import get_task

    config = _config("behrt_mortality_small", f"init_from={mlm_run}")
    model, tokenizer, info = get_task("behrt_classify").build(config, None)
    final = json.loads((mlm_run / "artifacts" / "metrics_summary.json").read_text())["best_checkpoint"]
    pretrained = load_file(str(mlm_run / final / "model.safetensors"))
    mine = model.state_dict()
    shared = [k for k in pretrained if k.startswith("behrt.") and k in mine]
    assert len(shared) > 10 and all(mine[k].equal(pretrained[k]) for k in shared)
    assert info["init_from"].endswith(final) and len(tokenizer) == info["vocab_size"]


def test_full_finetune_reports_test_figures_baselines_and_intervals(mlm_run: Path, tmp_path: Path) -> None:
    from recipes.train.loop import run_training

    run = run_training(_config("behrt_mortality_small", f"init_from={mlm_run}", f"out={tmp_path / 'full'}"))
    summary = _summary(run)
    assert {"test_auroc", "test_auprc", "test_f1", "test_brier", "test_threshold"} <= set(summary["test"])
    lr, prior = summary["baselines"]["bag_of_codes_lr"], summary["baselines"]["prior"]
    assert 0 <= lr["test_auroc"] <= 1 and prior["test_auroc"] == 0.5
    assert prior["test_auprc"] == pytest.approx(summary["test"]["test_prevalence"])  # same split
    ci = summary["test_ci"]["test_auroc"]
    assert ci["low"] <= ci["value"] <= ci["high"] and ci["value"] == pytest.approx(summary["test"]["test_auroc"])


def test_lora_finetune_trains_a_share_and_saves_merged_and_adapter_checkpoints(mlm_run: Path, tmp_path: Path) -> None:
    import torch

    from ehrdebug.models import load_pretrained
    from recipes.train.loop import run_training, setup_model

    config = _config("behrt_mortality_lora_small", f"init_from={mlm_run}", f"out={tmp_path / 'lora'}")
    run = run_training(config)
    share = json.loads((run / "run.json").read_text())["parameters"]
    assert 0 < share["trainable"] < share["total"]
    ckpt = run / "checkpoints" / "step-6"
    assert (ckpt / "adapter" / "adapter_model.safetensors").is_file() and (ckpt / "adapter" / "adapter_config.json").is_file()
    merged = load_pretrained(str(ckpt)).eval()  # what the doctor loads: a plain BEHRT classifier
    tokenizer, adapted, _, task = setup_model(config, ckpt)  # the pretrained model + LoRA + the adapter-only weights
    adapted.eval()
    records = task.records(config, "validation")[:16]
    batch = task.batch(task.features(records, tokenizer, config))
    batch.pop("labels")
    with torch.no_grad():
        assert torch.allclose(merged(**batch).logits, adapted(**batch).logits, atol=1e-5)
    assert "baselines" in _summary(run)


def test_meds_predictions_are_written_when_records_have_a_prediction_time(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from recipes.train.loop import run_training

    data = tmp_path / "codes"
    data.mkdir()
    shipped = REPO / "sample_data" / "ehr" / "codes"
    for split in ("train", "validation", "test"):
        rows = [json.loads(x) for x in (shipped / f"{split}.jsonl").read_text().splitlines()[:80]]
        for i, r in enumerate(rows):
            r.update(subject_id=r["patient_id"], prediction_time=f"2020-01-{1 + i % 28:02d}T00:00:00", label=r.pop("mortality"))
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = run_training(_config("behrt_mortality_small", "init_from=null", f"data.codes_dir={data}", "label_field=label",
                               f"out={tmp_path / 'meds'}"))  # fmt: skip
    summary = _summary(run)
    table = pq.read_table(run / summary["predictions"])
    assert {"subject_id", "prediction_time", "boolean_value", "predicted_boolean_value",
            "predicted_boolean_probability"} <= set(table.column_names) and table.num_rows == 80  # fmt: skip
