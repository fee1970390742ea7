"""The zoo's EHRMamba cases (seed 004's reproduction): tiny EHRMamba runs on the shipped codes records, one knob turned.

Seed 004's Mamba pretraining did not converge and its run stopped while validation loss still fell. Each
failure here is a real run: padding counted in the causal loss (``lm.mask_padding=false``: labels are the
input ids, padding included), the full rate from step 0 at ten times the recipe's lr with no warmup, a
classifier head pooling the last POSITION (padding on most rows), and a run stopped after a few epochs. The
probes read the run's own evidence, rebuilt from its ``run.json`` (``recipes.zoo.code_evidence``): the
batches its collator returns, its saved model on padded batches, its logged curves — never the config key.

The slow path of seed 004 (Mamba on a GPU without mamba-ssm/causal-conv1d, 16,636 s an epoch) is not a case:
a CPU cannot reproduce CUDA without the kernels (the CPU fallback is the expected path, which
``runtime.mamba_fast_path`` reports as info). ``tests/test_model_runtime.py`` covers it with a simulated
CUDA availability instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ehrdebug.findings import Finding
from recipes.zoo.case import Case

PRETRAIN = "ehrmamba_pretrain_small"
MORTALITY = "ehrmamba_mortality_small"
EVIDENCE_BATCHES = 4
EVIDENCE_BATCH_SIZE = 32

# a narrow one-block Mamba on a few hundred records: seconds a run on one core; every step logged (the curves)
TINY: tuple[str, ...] = (
    "data.max_train=192",
    "threads=1",
    "log_every=1",
    "device=cpu",
    "model.hidden_size=32",
    "model.num_hidden_layers=1",
    "model.state_size=8",
    "max_length=64",
    "max_minutes=3",
    "final_test=false",
    "keep_checkpoints=1",
    "num_log_samples=1",
    "runtime_probe=false",
)
TINY_MORTALITY: tuple[str, ...] = (
    *TINY,
    "init_from=null",
    "bootstrap=0",
    "baselines=false",
    "max_steps=6",
    "eval_every=6",
)
SHORT_PRETRAIN: tuple[str, ...] = ("max_steps=24", "eval_every=24")
# seed 004 ran the full rate from step 0: here 0.3 (150x the recipe's 2e-3) with no warmup
NO_WARMUP: tuple[str, ...] = ("max_steps=40", "eval_every=20", "warmup_steps=0", "lr=0.3")
# eight epochs at a constant rate that learns quickly, cut by a step cap after two: validation loss still falling
STOPPED_EARLY: tuple[str, ...] = (
    "epochs=8",
    "max_steps=12",
    "lr=2e-2",
    "warmup_steps=2",
    "scheduler=constant",
    "eval_every=2",
    "early_stopping.patience=null",
)


def _rebuilt(run_dir: Path, split: str = "train") -> tuple[list[dict[str, Any]], Any, Any, dict[str, Any]]:
    """Batches of the run's own collator (seeded) over ``split``, with its saved model and tokenizer."""
    import torch

    from recipes.zoo.code_evidence import rebuild

    config, task, model, tokenizer = rebuild(run_dir, weights=True)
    records = task.records(config, split)[: EVIDENCE_BATCHES * EVIDENCE_BATCH_SIZE]
    features = task.features(records, tokenizer, config)
    collate = task.collator(tokenizer, model, config, train=split == "train")
    torch.manual_seed(int(config.get("seed") or 0))
    step = EVIDENCE_BATCH_SIZE
    return [collate(features[i : i + step]) for i in range(0, len(features), step)], tokenizer, model, config


def causal_label_findings(run_dir: Path) -> list[Finding]:
    """``data.causal_labels`` on the run's training batches, with its model's loss share on padding."""
    from probes.causal_batch import probe_causal_labels

    batches, tokenizer, model, _ = _rebuilt(run_dir)
    return probe_causal_labels(batches, tokenizer, model=model, subject=str(run_dir))


def pooling_findings(run_dir: Path) -> list[Finding]:
    """``model.pooling``: the saved classifier on validation batches, each padded row scored with and without padding."""
    from probes.pooling import probe_pooling

    batches, _, model, _ = _rebuilt(run_dir, "validation")
    return probe_pooling(model, batches, subject=str(run_dir))


def _history(run_dir: Path) -> Any:
    from ehrdebug.runstore.reader import open_run

    return open_run(run_dir).history()


def divergence_findings(run_dir: Path) -> list[Finding]:
    from probes.curves import divergence

    return divergence(_history(run_dir))


def undertrained_findings(run_dir: Path) -> list[Finding]:
    from probes.curves import undertrained

    return undertrained(_history(run_dir))


MAMBA_CASES: list[Case] = [
    Case(
        name="mamba-healthy-pretrain",
        seed="004",
        failure="none: the shipped EHRMamba causal-LM pretraining (labels -100 on padding, warmup)",
        how="ehrmamba_pretrain_small as shipped on a narrow one-block Mamba, a few steps",
        probe="",
        fix="",
        config=PRETRAIN,
        overrides=TINY + SHORT_PRETRAIN,
        notes={"probes": ("data.causal_labels", "curves.divergence")},
    ),
    Case(
        name="mamba-padding-in-loss",
        seed="004",
        failure="pretraining loss that does not converge: padding counted in the causal loss",
        how="lm.mask_padding=false: labels are the input ids, [PAD] after [PAD] on every padded row (no -100, "
        "no attention mask), the form of the seed's reproduction script",
        probe="data.causal_labels",
        fix="mask-padding-in-loss",
        config=PRETRAIN,
        overrides=TINY + SHORT_PRETRAIN + ("lm.mask_padding=false",),
        evidence=causal_label_findings,
    ),
    Case(
        name="mamba-no-warmup-diverges",
        seed="004",
        failure="pretraining loss that does not converge: the full (too high) rate from the first step",
        how="warmup_steps=0 lr=0.3 (the recipe: 2e-3 after 40 warmup steps): the loss jumps in the first steps",
        probe="curves.divergence",
        fix="lower-learning-rate",
        config=PRETRAIN,
        overrides=TINY + NO_WARMUP,
        evidence=divergence_findings,
    ),
    Case(
        name="mamba-pools-padding",
        seed="004",
        failure="the mortality head reads a padding position, so a patient's score depends on its batch",
        how="model.pooling=last_position: the head pools the last position, padding on every row shorter than "
        "its batch",
        probe="model.pooling",
        fix="pool-last-real-token",
        config=MORTALITY,
        overrides=TINY_MORTALITY + ("model.pooling=last_position",),
        evidence=pooling_findings,
    ),
    Case(
        name="mamba-stopped-early",
        seed="004",
        failure="training stopped while validation loss was still decreasing",
        how="max_steps=12 of eight epochs (48 steps) at a constant lr 2e-2: validation loss still falls ~4% an evaluation",
        probe="curves.undertrained",
        fix="train-longer",
        config=PRETRAIN,
        overrides=TINY + STOPPED_EARLY,
        evidence=undertrained_findings,
    ),
    Case(
        name="mamba-healthy-mortality",
        seed="004",
        failure="none: the shipped EHRMamba mortality head (last non-padding token)",
        how="ehrmamba_mortality_small from scratch on a narrow one-block Mamba, a few steps",
        probe="",
        fix="",
        config=MORTALITY,
        overrides=TINY_MORTALITY,
        notes={"probes": ("model.pooling",)},
    ),
]

# the probe runners a healthy case is checked with
EVIDENCE = {
    "data.causal_labels": causal_label_findings,
    "model.pooling": pooling_findings,
    "curves.divergence": divergence_findings,
    "curves.undertrained": undertrained_findings,
}
