"""The zoo's causal-LM coding cases (seed 003): the tiny LLaMA base answering notes with SNOMED-CT ids.

Each starts from the shipped healthy ``llama_coding_lora_small`` config on a small coding root and turns
the knob seed 003 turned: extra text around the code (a low loss with 0% strict accuracy), the delimiter
tokens frozen under LoRA, the prompt left in the loss, a learning rate too high for LoRA, ``drop_last`` on
a small dataset. The probes read the run's curves and metrics, its checkpoint (the saved rows of the new
tokens), its data and training arguments, and real batches rebuilt with the run's own config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrdebug.findings import Finding
from recipes.zoo.case import Case

CONFIG = "llama_coding_lora_small"
SIZES = (44, 16, 16)  # train / validation / test notes: 44 = 5 x 8 + 4, so drop_last has a batch to drop

# seconds-long runs: a few dozen steps, short prompts, few generations
TINY_CAUSAL: tuple[str, ...] = (
    "threads=1",
    "final_test=false",
    "keep_checkpoints=1",
    "num_log_samples=2",
    "num_eval_generations=8",
    "max_length=96",
    "generation.max_new_tokens=12",
    "warmup_steps=2",
    "max_minutes=4",
    "add_code_tokens=0",
)
TRAIN = ("max_steps=24", "eval_every=12")  # two evaluations: a divergence needs points after the spike
# extra text around the code: most answer tokens are a fixed sentence, learned at once (full fine-tuning
# memorises it in two dozen steps; LoRA on this 1M-parameter base needs minutes for the same)
EXTRA_TEXT = (
    "response_template='The SNOMED-CT concept id of the primary diagnosis in this clinical note is {answer}. "
    "This answer was generated from the note above and must be checked by a clinical coder before it is used.'"
)
# a LoRA rate 25x the recipe's, reached after a short warmup, logged every step (the spike is one step wide)
SPIKE = ("lr=0.05", "warmup_steps=12", "scheduler=linear", "max_steps=36", "eval_every=36", "log_every=1")
FORMAT = ("use_lora=false", "lr=3e-3", "scheduler=constant", "max_steps=36", "eval_every=36", "add_code_tokens=25")


def prepare_coding(root: Path) -> tuple[str, ...]:
    """``root/coding/{train,validation,test}.jsonl``: the first shipped notes of each split (written once)."""
    from ehrdebug.data.sample import sample_data_dir

    out = root / "coding"
    if not (out / "test.jsonl").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for split, size in zip(("train", "validation", "test"), SIZES, strict=True):
            lines = (sample_data_dir() / "coding" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            (out / f"{split}.jsonl").write_text("\n".join(lines[:size]) + "\n", encoding="utf-8")
    return ("data.task=coding",)


def _run_config(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["config"]


def prompt_loss_findings(run_dir: Path) -> list[Finding]:
    """``data.prompt_loss`` on real batches of the run's training data, encoded and collated with its own
    config, scored with its final checkpoint's per-token loss."""
    from ehrdebug.loading import final_checkpoint, load_model
    from probes.prompt_loss import prompt_loss
    from recipes.train.causal_data import CausalCollator, encode, pad_id
    from recipes.train.data import load_records

    config = _run_config(run_dir)
    checkpoint = final_checkpoint(run_dir)
    model, tokenizer = load_model(checkpoint)
    records = load_records(config, "train")[:32]
    features = [encode(tokenizer, r, config) for r in records]
    collate = CausalCollator(pad_id(tokenizer))
    batches = [collate(features[i : i + 8]) for i in range(0, len(features), 8)]
    lengths = [f["prompt_length"] for f in features]  # the boundary the run's own encoding drew
    return prompt_loss(batches, tokenizer, model, prompt_lengths=lengths, subject=f"run {run_dir.name}")


def causal_findings(run_dir: Path) -> list[Finding]:
    """What the doctor cannot rebuild from a run alone: the prompt-loss probe on the run's batches."""
    return prompt_loss_findings(run_dir)


CAUSAL_CASES: list[Case] = [
    Case(
        name="llama-healthy-coding",
        seed="003",
        failure="none: the shipped LoRA coding setup (prompt masked, strict answer format, new rows trained)",
        how="llama_coding_lora_small as shipped on 44 notes, a few dozen steps",
        probe="",
        fix="",
        config=CONFIG,
        overrides=TINY_CAUSAL + TRAIN,
        prepare=prepare_coding,
        evidence=causal_findings,
        notes={
            "probes": (
                "metrics.loss_vs_accuracy",
                "model.trainable",
                "data.prompt_loss",
                "data.coverage",
                "curves.divergence",
            )
        },
    ),
    Case(
        name="llama-format-extra-text",
        seed="003",
        failure="loss 0.05 with 0% strict accuracy: the answers carry extra text around the code",
        how="response_template wraps the code in a fixed sentence; strict post-processing expects the code alone",
        probe="metrics.loss_vs_accuracy",
        fix="strict-output-format",
        config=CONFIG,
        overrides=TINY_CAUSAL + FORMAT + (EXTRA_TEXT,),
        prepare=prepare_coding,
    ),
    Case(
        name="llama-new-tokens-frozen",
        seed="003",
        failure="<code>/</code> added to the tokenizer but LoRA never trains their rows",
        how="new_token_training=frozen: no trainable_token_indices or modules_to_save for the new rows",
        probe="model.trainable",
        fix="lora-train-embeddings",
        config=CONFIG,
        overrides=TINY_CAUSAL + TRAIN + ("new_token_training=frozen",),
        prepare=prepare_coding,
    ),
    Case(
        name="llama-prompt-not-masked",
        seed="003",
        failure="every prompt token carries loss: the loss falls fast on the template, not on the answer",
        how="mask_prompt=false (labels = input_ids, as seed 003's script built them)",
        probe="data.prompt_loss",
        fix="mask-prompt-loss",
        config=CONFIG,
        overrides=TINY_CAUSAL + TRAIN + ("mask_prompt=false",),
        prepare=prepare_coding,
        evidence=causal_findings,
    ),
    Case(
        name="llama-lr-too-high",
        seed="003",
        failure="a LoRA learning rate far too high: the loss spikes and does not come back",
        how="lr=0.05 (25x the recipe's rate) reached after 12 warmup steps: a loss spike mid-run",
        probe="curves.divergence",
        fix="lower-learning-rate",
        config=CONFIG,
        overrides=TINY_CAUSAL + SPIKE,
        prepare=prepare_coding,
    ),
    Case(
        name="llama-drop-last-small-data",
        seed="003",
        failure="drop_last on a small dataset: a batch of notes never trained on each epoch",
        how="drop_last=true with 44 notes in batches of 8: 4 notes (9%) dropped every epoch",
        probe="data.coverage",
        fix="check-drop-last",
        config=CONFIG,
        overrides=TINY_CAUSAL + TRAIN + ("drop_last=true",),
        prepare=prepare_coding,
    ),
]
