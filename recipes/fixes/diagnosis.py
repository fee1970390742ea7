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
    from probes.doctor import diagnose

    run_dir = Path(path)
    findings = run_aware_model_findings(run_dir) if run_config(run_dir) is not None else None
    if findings is None:
        report = diagnose(str(path), data=data, config=config)
    else:  # the doctor's own model suite would decode with defaults; the run's settings replace it
        report = diagnose(str(path), data=data, config=config, replace={"model": lambda: findings})
        report.meta["model_probes"] = RUN_AWARE
    collator = run_collator_findings(run_dir)
    if collator is not None:
        report.findings = [f for f in report.findings if f.probe != "data.collator"] + collator
        report.meta["collator_probe"] = "the run's own features and collator (label_pad, drop_string_columns)"
    return report


def run_collator_findings(path: Path) -> list[Finding] | None:
    """``data.collator`` on the features and collator the recipe built for this run (even one that crashed)."""
    found = run_config(path)
    if found is None:
        return None
    config, info = found
    from probes.data_collator import probe_collator
    from recipes.train import data as D
    from recipes.train import tokens
    from recipes.train.loop import _task

    checkpoint = _checkpoint(path, info)
    task = _task(config)
    if checkpoint is not None:
        from probes.doctor import load_model

        model, tokenizer = load_model(checkpoint, checkpoint)
    else:  # the run died before its first checkpoint (seed 002's collator crash): rebuild its start
        tokenizer, model = tokens.load_base(str(config["base"]), config["recipe"], config.get("model_dropout"))
        special = list(config["special_tokens"]) if config["register_special_tokens"] else []
        tokens.add_tokens(model, tokenizer, special, [], config["new_token_init"], seed=config["seed"])
    records = D.load_records(config, "train")[:32]
    features = D.make_features(task.pairs(records, config), tokenizer, config)
    collator = D.make_collator(tokenizer, model, config)
    return probe_collator(features, tokenizer, "seq2seq", collator=collator, collator_name=type(collator).__name__,
                          decoder_start_token_id=model.config.decoder_start_token_id, subject=f"run {path.name}")


def run_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    info_path = path / "run.json"
    if not info_path.is_file():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    config = info.get("config") or {}
    if "recipe" not in config or "generation" not in config:
        return None
    return config, info


def _checkpoint(path: Path, info: dict[str, Any]) -> Path | None:
    """The checkpoint the run ends with: the best one when it was kept and reloaded, else the latest."""
    from recipes.fixes.base import _latest_checkpoint

    summary = path / "artifacts" / "metrics_summary.json"
    if summary.is_file():
        best = json.loads(summary.read_text(encoding="utf-8")).get("best_checkpoint")
        if best and (path / best / "config.json").is_file():
            return path / best
    return _latest_checkpoint(path)


def run_aware_model_findings(path: Path) -> list[Finding] | None:
    """Model-suite findings under the run's own decoding; None when ``path`` is not a recipe run."""
    found = run_config(path)
    if found is None:
        return None
    config, info = found
    checkpoint = _checkpoint(path, info)
    if checkpoint is None:
        return None
    from probes.doctor import load_model
    from probes.model_suite import run_model_probes
    from recipes.train import data as D
    from recipes.train.generate import generation_kwargs
    from recipes.train.loop import _task

    model, tokenizer = load_model(checkpoint, checkpoint)
    task = _task(config)
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
