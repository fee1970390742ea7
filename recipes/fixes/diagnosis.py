"""The doctor's report on a run, with the model probes re-run the way the run itself generates.

``probes.doctor.diagnose`` sees a checkpoint and the data; it does not know the run's decoding
settings (the dataset's end token, a blocked pretrained EOS, beams, repetition penalty), the T5
inference prefix the recipe puts in front of every input, or how many rows the base vocabulary had.
For a run written by ``recipes.train`` this module reads those from ``run.json`` and re-runs the model
suite with them, replacing the doctor's model findings, so a decoding fix that the run applies is
judged on the outputs the run really produces.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehrdebug.findings import Finding, Report

MAX_RECORDS = 8
RUN_AWARE = "run with the run's generation settings, inference prefix and base vocabulary (recipes.fixes.diagnosis)"


def diagnose_run(path: str | os.PathLike[str], data: str | None = None, config: Any = None) -> Report:
    """``probes.doctor.diagnose``; for a recipe run, its model and collator probes use the run's own settings."""
    from probes.doctor import diagnose, load_model

    run_dir = Path(path)
    found = run_config(run_dir)
    if found is None:
        return diagnose(str(path), data=data, config=config)
    run_cfg, info = found
    checkpoint = run_checkpoint(run_dir, info)
    loaded = load_model(checkpoint, checkpoint) if checkpoint is not None else None  # once, for both probes
    if loaded is None:
        report = diagnose(str(path), data=data, config=config)
    else:  # the doctor's own model suite would decode with defaults; the run's settings replace it
        findings = _model_findings(run_cfg, info, *loaded)
        report = diagnose(str(path), data=data, config=config, replace={"model": lambda: findings})
        report.meta["model_probes"] = RUN_AWARE
    collator = _collator_findings(run_dir, run_cfg, loaded)
    report.findings = [f for f in report.findings if f.probe != "data.collator"] + collator
    report.meta["collator_probe"] = "the run's own features and collator (label_pad, drop_string_columns)"
    return report


def _collator_findings(path: Path, config: dict[str, Any], loaded: tuple[Any, Any] | None) -> list[Finding]:
    """``data.collator`` on the features and collator the recipe built for this run (even one that crashed)."""
    from probes.data_collator import probe_collator
    from recipes.train import data as D
    from recipes.train import tokens
    from recipes.train.loop import task_module

    if loaded is not None:
        model, tokenizer = loaded
    else:  # the run died before its first checkpoint (seed 002's collator crash): rebuild its start
        tokenizer, model = tokens.load_base(str(config["base"]), config["recipe"], config.get("model_dropout"))
        special = list(config["special_tokens"]) if config["register_special_tokens"] else []
        tokens.add_tokens(model, tokenizer, special, [], config["new_token_init"], seed=config["seed"])
    task = task_module(config)
    records = D.load_records(config, "train")[:32]
    features = D.make_features(task.pairs(records, config), tokenizer, config)
    collator = D.make_collator(tokenizer, model, config)
    return probe_collator(features, tokenizer, "seq2seq", collator=collator, collator_name=type(collator).__name__,
                          decoder_start_token_id=model.config.decoder_start_token_id, subject=f"run {path.name}")


def run_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The training config and run.json of a run written by ``recipes.train``; None for any other path."""
    info_path = path / "run.json"
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    config = info.get("config") or {}
    if "recipe" not in config or "generation" not in config:
        return None
    return config, info


def run_checkpoint(path: Path, info: dict[str, Any]) -> Path | None:
    """The checkpoint the run ends with: the best one when it was kept and reloaded, else the latest."""
    from recipes.fixes.base import _latest_checkpoint

    summary = path / "artifacts" / "metrics_summary.json"
    if summary.is_file():
        best = json.loads(summary.read_text(encoding="utf-8")).get("best_checkpoint")
        if best and (path / best / "config.json").is_file():
            return path / best
    return _latest_checkpoint(path)


def _model_findings(config: dict[str, Any], info: dict[str, Any], model: Any, tokenizer: Any) -> list[Finding]:
    """Model-suite findings under the run's own decoding, inference prefix and base vocabulary."""
    from probes.model_suite import run_model_probes
    from recipes.train import data as D
    from recipes.train.generate import generation_kwargs
    from recipes.train.loop import task_module

    task = task_module(config)
    records = D.load_records(config, config["data"]["eval_split"])[:MAX_RECORDS]
    if config["recipe"] == "t5_diagnosis":
        prefix = config["task_prefix"] if config.get("inference_prefix") is None else config["inference_prefix"]
        records = [{**r, "input": f"{prefix or ''}{r['input']}"} for r in records]
    elif config.get("decoder_prompt"):
        # the decoder writes the whole line ("56 ASIAN M <demo> <v> ... <END>"): that is the target it learned
        records = [{**r, "target": r.get("text") or f"{r['prompt']} {r['target']}"} for r in records]
    codes = D.code_vocabulary(config) if task.TASK == "seq2seq" else None
    base_vocab = (info.get("tokens") or {}).get("base_vocab_size")
    return run_model_probes(
        model, tokenizer, records, task.probe_config(config), base_vocab_size=base_vocab,
        reference_state=initial_state(config), generation_kwargs=generation_kwargs(tokenizer, model, config),
        code_vocabulary=codes, max_examples=MAX_RECORDS, with_attribution=False,
    )


def initial_state(config: dict[str, Any]) -> dict[str, Any] | None:
    """The weights the run started from (base + added tokens, initialised as configured, same seed): the
    reference that tells how new rows were initialised and whether they moved."""
    from recipes.train.loop import _setup

    try:
        _, model, _, _ = _setup(config, None)
    except Exception:  # a base that cannot be rebuilt here (a hub id offline): judge on current weights
        return None
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
