"""The probe registry: each probe's id, the function that runs it, the inputs it needs and the recipes that answer it.

Suites and the doctor select probes by the inputs at hand (``available``) instead of hand-wired lists, so a new
probe is one module plus one ``ProbeSpec`` line appended to ``PROBES``. ``docs/probes.md`` holds the table
``markdown_table()`` renders (a test keeps the two equal; ``python -m probes.registry`` rewrites it).

Input names: ``tokenizer``, ``data``, ``model``, ``history``, ``config``, ``batches``, ``predictions``, ``run``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INPUTS = ("tokenizer", "data", "model", "history", "config", "batches", "predictions", "run")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: ``function`` is ``"module:function"``; ``needs`` are input names (see ``INPUTS``)."""

    id: str
    function: str
    needs: tuple[str, ...]
    recipes: tuple[str, ...]
    summary: str
    seed: str = ""

    @property
    def module(self) -> str:
        return self.function.partition(":")[0]

    def load(self) -> Callable[..., Any]:
        """The probe function itself (imported on demand: probe modules import torch inside functions)."""
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


# One spec per probe; append new probes here (one ProbeSpec per line).
PROBES: list[ProbeSpec] = [
    ProbeSpec("tokenizer.structural", "probes.tokenizer_structural:probe_structural", ("tokenizer", "data"), ("register-structural-tokens", "init-new-embeddings-mean"), "each structural token is one id alone, after a space, after a word; survives normalisation; round-trips", "000"),
    ProbeSpec("tokenizer.codes", "probes.tokenizer_codes:probe_codes", ("tokenizer", "data", "config"), ("add-code-tokens", "register-structural-tokens"), "pieces per code per code system, single-token share, `<unk>` rate, what adding the top-N codes changes", "000"),
    ProbeSpec("tokenizer.roundtrip", "probes.tokenizer_roundtrip:probe_roundtrip", ("tokenizer", "data", "config"), ("use-fast-tokenizer", "register-structural-tokens"), "decode(encode(x)) == x, and what normalisation changes", "000"),
    ProbeSpec("tokenizer.lengths", "probes.tokenizer_roundtrip:probe_lengths", ("tokenizer", "data", "config"), ("fix-truncation",), "length distribution; truncation that cuts the end token (targets against `max_target_length`)", "002"),
    ProbeSpec("data.collator", "probes.data_collator:probe_collator", ("tokenizer", "data", "batches"), ("remove-string-columns", "mask-label-padding", "fix-truncation"), "real batches from the user's collator: string columns, pad ids in labels, all -100 labels, decoder start/shift, causal prompt masking and EOS, attention masks", "002"),
    ProbeSpec("data.split", "probes.data_split:probe_split", ("data",), ("split-by-patient", "deduplicate-splits"), "a patient in two splits; examples duplicated across splits", "001"),
    ProbeSpec("data.coverage", "probes.data_coverage:probe_coverage", ("data", "config"), ("check-drop-last",), "samples/epoch, effective batch, optimizer steps, samples dropped by drop_last — HF Trainer's own arithmetic", "003"),
    ProbeSpec("data.labels", "probes.data_labels:probe_labels", ("data",), ("report-auprc", "split-by-patient"), "class balance, few positives → AUPRC beside AUROC", "004"),
    ProbeSpec("model.special_token_probability", "probes.special_tokens:special_token_probability", ("model", "tokenizer", "data"), ("register-structural-tokens", "init-new-embeddings-mean", "warmup-new-embeddings", "block-pretrained-eos", "mask-label-padding", "train-longer"), "probability/rank of the token that should come next (`<v>` after `<demo>`), top-k alternatives, pretrained-EOS dominance; on a code-timeline causal LM (EHRMamba): gap token after `[VE]`, `[VS]` after a gap, `[PAD]` mass inside a timeline", "000"),
    ProbeSpec("model.new_embeddings", "probes.embeddings:new_embeddings", ("model",), ("init-new-embeddings-mean", "init-new-embeddings-description", "warmup-new-embeddings", "lora-train-embeddings", "tie-or-resize-lm-head"), "added rows vs base norm distribution (random vs mean init), rows that never moved, lm_head out of step, missing/unexpected keys at load", "000, 002"),
    ProbeSpec("model.trainable", "probes.trainable:trainable", ("model",), ("lora-train-embeddings", "raise-learning-rate"), "trainable parameters, LoRA targets/rank, new tokens with frozen embeddings", "001, 003"),
    ProbeSpec("generation.tf_vs_sampling", "probes.generation:tf_vs_sampling", ("model", "tokenizer", "data"), ("block-pretrained-eos", "anti-repetition-decoding", "lower-temperature", "early-stopping", "train-longer"), "teacher-forced accuracy/loss vs free-running with the run's decoding settings: EHR grammar validity, valid-code rate, exact match, first divergence; on a code-timeline causal LM: sampled continuations judged for visit/time grammar, known codes, loops; states sample size and settings", "000"),
    ProbeSpec("generation.degeneration", "probes.degeneration:degeneration", ("model", "tokenizer", "data"), ("anti-repetition-decoding", "block-pretrained-eos", "add-task-prefix", "fix-truncation", "mask-label-padding", "lower-learning-rate", "train-longer"), "repetition loops, all-PAD, empty, input echo, the same output for every input, never ending, stopping on a pretrained EOS", "002, 000"),
    ProbeSpec("model.task_prefix", "probes.task_prefix:task_prefix", ("model", "tokenizer", "data", "config"), ("add-task-prefix",), "T5 inputs at inference lacking the training prefix", "002"),
    ProbeSpec("runtime.mamba_fast_path", "probes.runtime:mamba_fast_path", ("model",), ("install-cuda-kernels",), "Mamba on CUDA without mamba-ssm/causal-conv1d kernels (slow reference path)", "004"),
    ProbeSpec("attribution.integrated_gradients", "probes.attribution:attribution", ("model", "tokenizer", "data"), (), "which input tokens drive an output token (captum IG on the embeddings)", ""),
    ProbeSpec("curves.overfitting", "probes.curves:overfitting", ("history",), ("early-stopping", "lower-learning-rate", "add-validation-set"), "validation loss rising while training loss falls", "000, 004"),
    ProbeSpec("curves.memorization", "probes.curves:memorization", ("history",), ("early-stopping", "add-validation-set"), "training loss near zero (memorised) against validation", "000"),
    ProbeSpec("curves.divergence", "probes.curves:divergence", ("history",), ("lower-learning-rate",), "non-finite losses, spikes that never recover, ending above the start", "000"),
    ProbeSpec("curves.stalled", "probes.curves:stalled", ("history",), ("raise-learning-rate", "lower-learning-rate"), "a loss that did not move or plateaued high", "000"),
    ProbeSpec("curves.undertrained", "probes.curves:undertrained", ("history",), ("train-longer", "add-validation-set"), "validation loss still falling at the end of training", "004"),
    ProbeSpec("metrics.loss_vs_accuracy", "probes.metrics:loss_vs_accuracy", ("history",), ("strict-output-format", "constrain-to-labels"), "low loss with low strict accuracy", "003"),
    ProbeSpec("data.mlm_batch", "probes.mlm_batch:probe_mlm_batch", ("batches", "tokenizer"), ("mlm-ignore-index", "mlm-masking-rate", "mlm-skip-special-tokens", "mlm-80-10-10"), "real MLM batches: the label value meaning 'no target' (-1 or the pad id instead of -100), measured vs configured masking rate, labels on [CLS]/[SEP]/[PAD]/visit separators, 80/10/10 replacement", "001"),
    ProbeSpec("data.id_ranges", "probes.id_ranges:probe_id_ranges", ("batches", "model"), ("grow-embedding-tables",), "ids of every stream (codes, ages, visit segments/positions, bins) against the embedding table the model declares: out-of-range share and max, ids piled on a table's last row (clamped upstream)", "001"),
    ProbeSpec("data.label_leakage", "probes.leakage:probe_label_leakage", ("data",), ("drop-outcome-codes", "cut-at-prediction-time"), "codes that give a binary label away (positive rate ≥ 95% covering ≥ 5% of positives, e.g. a death code), events after the prediction time", "004"),
    ProbeSpec("metrics.classifier", "probes.task_metrics:probe_classifier", ("predictions",), ("increase-learning-rate", "train-longer", "report-auprc"), "a classifier that has not learned: AUROC whose bootstrap interval holds 0.5, AUPRC no better than the prevalence, flat probabilities; AUPRC beside AUROC when positives are rare", "004"),
    ProbeSpec("metrics.next_visit", "probes.task_metrics:probe_next_visit", ("predictions", "data"), ("init-head-to-code-prior", "increase-learning-rate", "train-longer", "weight-rare-codes"), "next-visit popularity collapse: recall@k no better than the k most frequent training codes, the same top-k for every patient", "001"),
    ProbeSpec("data.prompt_loss", "probes.prompt_loss:prompt_loss", ("batches", "tokenizer"), ("mask-prompt-loss",), "instruction data (prompt/response): every prompt token carrying loss, and the prompt's share of the loss (the model's per-token loss when a model is given, else the token share)", "003"),
    ProbeSpec("data.causal_labels", "probes.causal_batch:probe_causal_labels", ("batches", "tokenizer"), ("mask-padding-in-loss",), "real causal-LM batches: targets on padding (label not -100 where attention_mask is 0), pad-id targets, and with a model the share of the loss padding carries", "004"),
    ProbeSpec("model.pooling", "probes.pooling:probe_pooling", ("model", "batches"), ("pool-last-real-token",), "a sequence classifier that reads padding: each padded row of real batches scored as batched and trimmed to its own length; a logit change means the head pools a padding position", "004"),
]


def available(inputs: Iterable[str]) -> list[ProbeSpec]:
    """The registered probes whose every input is present, in registry order."""
    have = set(inputs)
    return [spec for spec in PROBES if set(spec.needs) <= have]


def by_id(probe_id: str) -> ProbeSpec | None:
    return next((spec for spec in PROBES if spec.id == probe_id), None)


def markdown_table() -> str:
    """The probe table of docs/probes.md, generated from ``PROBES``."""
    rows = ["| probe id | module | needs | looks at | recipes | seed |", "|---|---|---|---|---|---|"]
    for spec in PROBES:
        module = "probes/" + spec.module.rpartition(".")[2] + ".py"
        recipes = ", ".join(f"`{r}`" for r in spec.recipes) or "—"
        rows.append(f"| `{spec.id}` | `{module}` | {', '.join(spec.needs)} | {spec.summary} | {recipes} | {spec.seed or '—'} |")
    return "\n".join(rows) + "\n"


DOC = Path(__file__).resolve().parents[1] / "docs" / "probes.md"
BEGIN, END = "<!-- probes table: generated by `python -m probes.registry` -->", "<!-- end probes table -->"


def render_doc(text: str) -> str:
    """``text`` (docs/probes.md) with the part between the markers replaced by the current table."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


if __name__ == "__main__":
    DOC.write_text(render_doc(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOC}")
