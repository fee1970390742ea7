"""EHRMamba on the training layer: pretraining then [MOR]-prompted mortality fine-tuning on the shipped records,
the runtime probe logged before the first training step, padding kept out of the causal loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TINY = ["data.max_train=160", "threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1",
        "model.state_size=8", "max_length=48", "max_minutes=null"]  # fmt: skip


def _train(name: str, *overrides: str) -> tuple[Path, dict, list[dict]]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run = run_training(load_recipe_config(CONFIGS / f"{name}.yaml", [*TINY, *overrides]))
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return run, json.loads((run / "artifacts" / "metrics_summary.json").read_text()), events


@pytest.mark.slow
def test_pretrain_then_mortality_with_the_runtime_probe_first(tmp_path: Path) -> None:
    pre_dir, pre, events = _train(
        "ehrmamba_pretrain_small", "max_steps=30", "eval_every=30", "lr=5e-3", f"out={tmp_path / 'pre'}"
    )
    kinds = [e["kind"] for e in events]
    runtime = [e for e in events if e["kind"] == "finding" and e.get("probe") == "runtime.mamba_fast_path"]
    assert runtime and kinds.index("finding") < kinds.index("train")  # before the first step
    assert runtime[0]["evidence"]["step_seconds"] > 0 and runtime[0]["evidence"]["seq_len"] <= 48
    losses = [row["loss"] for row in pre["history"]["train"]]
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5
    assert {"test_next_token_accuracy", "test_perplexity"} <= set(pre["test"])
    _, mort, _ = _train("ehrmamba_mortality_small", "max_steps=10", "eval_every=10", "bootstrap=20", "runtime_probe=false",
                        f"init_from={pre_dir}", f"out={tmp_path / 'mort'}")  # fmt: skip
    assert {"test_auroc", "test_auprc", "test_f1"} <= set(mort["test"])
    assert set(mort["baselines"]) == {"bag_of_codes_lr", "prior"}


def test_padding_is_masked_in_the_causal_labels_unless_the_zoo_turns_it_off():
    from recipes.train.config import load_recipe_config
    from recipes.train.task import get_task

    task = get_task("ehrmamba_pretrain")
    for mask_padding in (True, False):
        config = load_recipe_config(
            CONFIGS / "ehrmamba_pretrain_small.yaml", [*TINY, f"lm.mask_padding={str(mask_padding).lower()}"]
        )
        model, tok, _ = task.build(config, None)
        records = task.records(config, "validation")[:8]
        batch = task.collator(tok, model, config, train=True)(task.features(records, tok, config))
        padding = batch["attention_mask"].eq(0)
        assert padding.any()
        assert bool(batch["labels"][padding].eq(-100).all()) is mask_padding
        assert tok.convert_ids_to_tokens(batch["input_ids"][0, :1].tolist()) == ["[VS]"]
        model(**batch).loss.backward()
