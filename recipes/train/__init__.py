"""Training recipes: one training layer (``recipes.train.loop``) and the tasks that run on it, driven by YAML configs.

A task (``recipes.train.task.Task``: ``build``, ``datasets``, ``collator``, ``loss``, ``evaluate``,
``records``, ``probe_config``, ``keys``/``defaults``) is registered by name in ``recipes.train.task.TASKS``
and looked up by ``config["recipe"]``: ``bart_ehrgen``, ``t5_diagnosis`` (seq2seq text), ``behrt_mlm``,
``behrt_nextvisit``, ``behrt_classify`` (EHR code sequences). The loop does the rest for all of them
(accelerate: DDP/FSDP under a launcher, AMP on CUDA, accumulation; eval, early stopping, checkpoints with
RNG state, SIGTERM/SIGINT checkpoints, the run directory, the final test).

Public API (stable; other recipes, the bug zoo and ``ehrdebug demo`` build on it):

``load_recipe_config(path, overrides: list[str] | None = None) -> dict``
    Read a YAML recipe config and apply ``key=value`` overrides (dotted keys for nested ones:
    ``generation.temperature=1.3``). Values are parsed as YAML scalars. An unknown key raises
    ``UserError`` naming the closest known key. The file's own ``recipe:`` key picks the loop.

``run_training(config: dict, out_dir: str | Path | None = None, probes=None) -> Path``
    Train the recipe named by ``config["recipe"]`` (any registered task) and return the
    run directory (``out_dir`` or ``config["out"]``). The run directory is written throughout with
    ``ehrdebug.runstore.RunLogger``: train/eval logs, samples, findings, checkpoints/step-N/
    (safetensors + tokenizer + optimizer/scheduler state), artifacts/loss.png and
    artifacts/metrics_summary.json. ``resume=true`` continues from the last checkpoint in out_dir.
    ``probes`` is an optional callable ``probes(model, tokenizer, config, step) -> list[Finding]``
    called at each evaluation; findings are logged as events (warn/fail also as alerts).
    ``model_probes: final | every_eval`` also runs ``probes.model_suite.run_model_probes`` (tens of
    seconds per call on a CPU, so off by default). Metrics logged at each evaluation:
    bart_ehrgen: ``eval_loss, eval_structural_validity, eval_valid_code_rate, eval_codes_generated,
    eval_p_visit_after_demo, eval_p_eos_after_demo``; t5_diagnosis: ``eval_loss, eval_accuracy,
    eval_empty_rate, eval_repetition_rate, eval_echo_rate``; the same with ``test_`` at the end in
    metrics_summary.json (``test``, ``best_step``, ``best_checkpoint``, ``tokens.demo_pieces`` ...).

``evaluate_checkpoint(run_or_checkpoint_dir, config=None) -> dict``
    Re-run the evaluation (eval loss, generations, grammar score, P(<v> | ... <demo>)) on a saved
    checkpoint; returns the metrics dict.

``pick_device(preference: str = "auto") -> torch.device``   cuda > mps > cpu.

Task helpers (stable): ``recipes.train.bart_ehrgen.generate / decoder_prefix / p_visit_after_demo``
(the decoder is primed with the prompt when ``decoder_prompt: true``), ``recipes.train.t5_diagnosis.generate``,
``recipes.train.generate.generation_kwargs(tokenizer, model, config)``, ``recipes.train.tokens.add_tokens``.

Config keys (see recipes/configs/*.yaml for the full commented list): ``base`` (local dir such as
``sample_data/bases/bart`` or a hub id such as ``facebook/bart-base``), ``special_tokens``,
``register_special_tokens``, ``new_token_init`` (random | mean | description), ``add_code_tokens``,
``epochs``, ``max_steps``, ``lr``, ``warmup_steps``, ``batch_size``, ``grad_accum``,
``early_stopping.patience`` (null = off), ``eval_every``, ``label_pad`` (-100 | pad),
``drop_string_columns``, ``task_prefix`` / ``inference_prefix``, ``lora.*``, ``generation.*``
(do_sample, temperature, top_k, top_p, num_beams, repetition_penalty, no_repeat_ngram_size,
max_new_tokens, eos = dataset end token, block_pretrained_eos, bad_words).

Offline pretrained bases: ``python -m recipes.train.pretrain --all --out sample_data/bases``.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "load_recipe_config": "recipes.train.config",
    "pick_device": "recipes.train.device",
    "run_training": "recipes.train.loop",
    "evaluate_checkpoint": "recipes.train.evaluation",
}


def __getattr__(name: str) -> Any:  # imported lazily: torch/transformers stay out of `--help`
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["evaluate_checkpoint", "load_recipe_config", "pick_device", "run_training"]
