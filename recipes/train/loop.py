"""The training loop every seq2seq recipe uses, in one readable function (torchtune style).

Load base → add tokens → tokenize → AdamW + warmup schedule → for each epoch, for each batch:
forward under autocast, backward (GradScaler on fp16), accumulate, clip, step; log; evaluate every
``eval_every`` steps (loss, generations, task metrics, probes); early-stop on patience; checkpoint.
The run directory is written throughout with ``RunLogger``: an evicted pod leaves a readable run and a
resumable checkpoint (``resume=true``). At the end: best weights on the test split, loss curves PNG
and ``artifacts/metrics_summary.json``.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

TASK_MODULES = {"bart_ehrgen": "recipes.train.bart_ehrgen", "t5_diagnosis": "recipes.train.t5_diagnosis"}


def task_module(config: dict[str, Any]) -> Any:
    """The recipe's task module (``pairs``, ``evaluate``, ``probe_config`` …) for ``config["recipe"]``."""
    return importlib.import_module(TASK_MODULES[config["recipe"]])


def _setup(config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any], Any]:
    """Tokenizer + model (from the base, or from a checkpoint when resuming) with tokens added."""
    from recipes.train import tokens
    from recipes.train.data import load_records

    task = task_module(config)
    tokenizer, model = tokens.load_base(str(config["base"]), config["recipe"], config.get("model_dropout"))
    train_records = task.label_targets(load_records(config, "train"))
    special = list(config["special_tokens"]) if config["register_special_tokens"] else []
    codes = tokens.top_codes(train_records, set(config["special_tokens"]), int(config["add_code_tokens"])) if config["add_code_tokens"] else []
    info = tokens.add_tokens(model, tokenizer, special, codes, config["new_token_init"], seed=config["seed"])
    info["demo_pieces"] = tokens.fragments(tokenizer, "56 ASIAN M <demo>") if config["recipe"] == "bart_ehrgen" else None
    if config["use_lora"]:
        from peft import LoraConfig, get_peft_model

        lora = config["lora"]
        saved = list(lora["modules_to_save"] or [])
        model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                                 target_modules=list(lora["target_modules"]), modules_to_save=saved or None))  # fmt: skip
    if checkpoint is not None:
        _load_weights(model, checkpoint)
    return tokenizer, model, info, task


def _load_weights(model: Any, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    files = sorted(checkpoint.glob("*.safetensors"))
    if not files:
        raise UserError(f"checkpoint has no safetensors weights: {checkpoint}")
    state = {}
    for f in files:
        state.update(load_file(str(f)))
    target = model
    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, state)
        return
    missing, unexpected = target.load_state_dict(state, strict=False)
    real_missing = [k for k in missing if "lm_head" not in k and "embed_tokens" not in k]
    if real_missing or unexpected:
        raise UserError(f"checkpoint {checkpoint} does not match the model ({len(real_missing)} missing, {len(unexpected)} unexpected)")


def _latest_checkpoint(run_dir: Path) -> Path | None:
    steps = [(int(p.name.split("-")[1]), p) for p in (run_dir / "checkpoints").glob("step-*") if p.name.split("-")[1].isdigit()]
    return max(steps)[1] if steps else None


def _prune(run_dir: Path, keep: int, best_step: int | None) -> None:
    steps = sorted((int(p.name.split("-")[1]), p) for p in (run_dir / "checkpoints").glob("step-*") if p.name.split("-")[1].isdigit())
    for step, path in steps[:-keep] if keep else []:
        if step != best_step:
            shutil.rmtree(path, ignore_errors=True)


def _improved(metric: str, value: float, best: float | None, min_delta: float) -> bool:
    if best is None:
        return True
    lower_is_better = "loss" in metric or metric.endswith("_rate") and "valid" not in metric
    return value < best - min_delta if lower_is_better else value > best + min_delta


def run_training(config: dict[str, Any], out_dir: str | Path | None = None, probes: Any = None) -> Path:
    """Train ``config["recipe"]`` into ``out_dir`` (or ``config["out"]``) and return the run directory."""
    import torch
    from transformers import get_scheduler

    from ehrdebug.runstore import RunLogger
    from recipes.train import data as D
    from recipes.train.device import autocast, autocast_dtype, grad_scaler, pick_device
    from recipes.train.generate import eval_loss
    from recipes.train.report import write_artifacts

    run_dir = Path(out_dir or config["out"])
    resume = bool(config["resume"])
    checkpoint = _latest_checkpoint(run_dir) if resume and run_dir.exists() else None
    if (run_dir / "events.jsonl").exists() and not resume:
        raise UserError(f"{run_dir} already holds a run; pass resume=true to continue it or choose a new out=")
    torch.manual_seed(config["seed"])
    if config["threads"]:
        torch.set_num_threads(int(config["threads"]))
    device = pick_device(config["device"])
    amp = autocast_dtype(device, config["precision"])
    tokenizer, model, token_info, task = _setup(config, checkpoint)
    model.to(device)

    # -- data ----------------------------------------------------------------------------------------
    train_records = D.load_records(config, "train")
    eval_records = D.load_records(config, config["data"]["eval_split"])
    train_features = D.make_features(D.training_pairs(task, train_records, config), tokenizer, config)
    eval_features = D.make_features(task.pairs(eval_records, config), tokenizer, {**config, "drop_string_columns": True})
    collator = D.make_collator(tokenizer, model, config)
    codes = D.code_vocabulary(config) if task.TASK == "seq2seq" else None

    # -- optimisation -----------------------------------------------------------------------------------
    steps_per_epoch = math.ceil(math.ceil(len(train_features) / config["batch_size"]) / config["grad_accum"])
    total_steps = int(config["max_steps"] or steps_per_epoch * config["epochs"])
    eval_every = int(config["eval_every"] or steps_per_epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    scheduler = get_scheduler(config["scheduler"] if config["scheduler"] != "constant" else "constant_with_warmup",
                              optimizer, num_warmup_steps=int(config["warmup_steps"]), num_training_steps=total_steps)  # fmt: skip
    scaler = grad_scaler(amp)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "best_step": None, "bad_evals": 0,
             "history": {"train": [], "eval": []}, "train_seconds": 0.0}  # fmt: skip
    if checkpoint is not None:
        state.update(json.loads((checkpoint / "trainer_state.json").read_text())["loop"])
        opt_state = torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=False)
        optimizer.load_state_dict(opt_state["optimizer"])
        scheduler.load_state_dict(opt_state["scheduler"])

    patience = config["early_stopping"]["patience"]
    metric = config["early_stopping"]["metric"]
    logger = RunLogger(
        run_dir, config, architecture=task.ARCHITECTURE, size=config["size"], task=task.TASK,
        base_model=str(config["base"]), tokenizer="checkpoints (each step-N holds its tokenizer)",
        data={**D.split_files(config), "codes": config["data"]["codes"]}, resume=checkpoint is not None or resume,
        extra={"recipe": config["recipe"], "tokens": token_info, "device": str(device), "amp": str(amp),
               "fixes": config.get("fixes") or []},
    )  # fmt: skip
    _write_probe_config(run_dir, task.probe_config(config))

    def evaluate(step: int) -> bool:
        """Log eval metrics and samples; return True when early stopping says stop."""
        metrics = {"eval_loss": eval_loss(model, eval_features, collator, device)}
        task_metrics, samples = task.evaluate(model, tokenizer, eval_records, config, device, codes)
        metrics.update(task_metrics)
        logger.log_eval(step, metrics)
        for s in samples[: config["num_log_samples"]]:
            logger.log_sample(step, **s)
        state["history"]["eval"].append({"step": step, **metrics})
        suite = config["model_probes"] in (True, "every_eval")
        _run_probes(probes, model, tokenizer, config, step, logger, eval_records, task, token_info, codes, suite)
        print(f"[eval step {step}] " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        value = metrics.get(metric, metrics["eval_loss"])
        if _improved(metric, value, state["best"], float(config["early_stopping"]["min_delta"])):
            state["best"], state["best_step"], state["bad_evals"] = value, step, 0
        else:
            state["bad_evals"] += 1
        save(step)
        warm = step >= float(config["early_stopping"]["min_epochs"] or 0) * steps_per_epoch  # no stop before min_epochs
        return patience is not None and warm and state["bad_evals"] >= int(patience)

    def save(step: int) -> None:
        logger.save_checkpoint(step, model, tokenizer, optimizer, scheduler, extra_state={"loop": dict(state)})
        _prune(run_dir, int(config["keep_checkpoints"]), state["best_step"] if config["save_best"] else None)

    # -- the loop ---------------------------------------------------------------------------------------
    stop = state["step"] >= total_steps
    started = time.time() - state["train_seconds"]
    with logger:
        while not stop:
            model.train()
            batches = D.epoch_batches(train_features, config["batch_size"], config["seed"], state["epoch"])
            for b in range(state["batch_in_epoch"], len(batches)):
                batch = collator([train_features[i] for i in batches[b]])
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast(device, amp):
                    loss = model(**batch).loss / config["grad_accum"]
                scaler.scale(loss).backward()
                state["batch_in_epoch"] = b + 1
                if (b + 1) % config["grad_accum"] and b + 1 != len(batches):
                    continue
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(params, float(config["max_grad_norm"]))
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                step = state["step"]
                state["train_seconds"] = time.time() - started
                epoch = state["epoch_float"] = state["epoch"] + (b + 1) / len(batches)
                if step % config["log_every"] == 0 or step == 1:
                    lr, value = scheduler.get_last_lr()[0], loss.item() * config["grad_accum"]
                    logger.log_train(step, loss=value, lr=lr, epoch=round(epoch, 4), grad_norm=float(grad_norm))
                    state["history"]["train"].append({"step": step, "loss": value, "epoch": epoch})
                out_of_time = config["max_minutes"] is not None and state["train_seconds"] > 60 * float(config["max_minutes"])
                if step % eval_every == 0 or step >= total_steps or out_of_time:
                    if evaluate(step):
                        logger.alert(step, "info", f"early stopping: no improvement of {metric} in {patience} evaluations")
                        stop = True
                if step >= total_steps or out_of_time:
                    stop = True
                if stop:
                    break
            else:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
        summary = _finish(model, tokenizer, config, task, state, run_dir, device, codes, token_info)
        if config["model_probes"] == "final":  # once, on the best weights (tens of seconds on a CPU)
            _run_probes(None, model, tokenizer, config, state["step"], logger, eval_records, task, token_info, codes, True)
        write_artifacts(run_dir, state["history"], summary)
        logger.finish("finished", **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
    return run_dir


def _finish(model: Any, tokenizer: Any, config: dict[str, Any], task: Any, state: dict[str, Any], run_dir: Path,
            device: Any, codes: set[str] | None, token_info: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Reload the best checkpoint (if kept) and measure it on the test split."""
    from recipes.train import data as D

    best = run_dir / "checkpoints" / f"step-{state['best_step']}"
    if config["save_best"] and state["best_step"] is not None and best.is_dir() and state["best_step"] != state["step"]:
        _load_weights(model, best)
        model.to(device)
    summary: dict[str, Any] = {
        "recipe": config["recipe"], "size": config["size"], "base": str(config["base"]), "steps": state["step"],
        "epochs_done": round(state.get("epoch_float", 0.0), 3),
        "train_seconds": round(state["train_seconds"], 1), "best_step": state["best_step"],
        "best_checkpoint": f"checkpoints/step-{state['best_step']}" if state["best_step"] is not None else None,
        "early_stopping_metric": config["early_stopping"]["metric"], "best_value": state["best"],
        "tokens": {k: v for k, v in token_info.items() if k != "added_ids"},
    }  # fmt: skip
    if state["history"]["train"]:
        summary["final_train_loss"] = state["history"]["train"][-1]["loss"]
    if state["history"]["eval"]:
        summary["last_eval"] = state["history"]["eval"][-1]
        summary["best_eval"] = next((e for e in state["history"]["eval"] if e["step"] == state["best_step"]), None)
    if config["final_test"]:
        try:
            records = D.load_records(config, config["data"]["test_split"])
        except UserError:
            records = []
        if records:
            metrics, samples = task.evaluate(model, tokenizer, records, config, device, codes, prefix="test")
            summary["test"] = metrics
            summary["test_samples"] = samples[:8]
    return summary


def _run_probes(probes: Any, model: Any, tokenizer: Any, config: dict[str, Any], step: int, logger: Any,
                records: list[dict[str, Any]], task: Any, token_info: dict[str, Any], codes: set[str] | None,
                suite: bool) -> None:  # fmt: skip
    """Caller-supplied probes, and ``probes.model_suite.run_model_probes`` when ``suite`` (if installed)."""
    findings: list[Any] = []
    if probes is not None:
        findings.extend(probes(model, tokenizer, config, step) or [])
    if suite:
        try:
            from probes.model_suite import run_model_probes
        except ImportError:
            run_model_probes = None
        if run_model_probes is not None:
            from recipes.train.generate import generation_kwargs

            findings.extend(run_model_probes(model, tokenizer, records, task.probe_config(config),
                                             base_vocab_size=token_info.get("base_vocab_size"),
                                             generation_kwargs=generation_kwargs(tokenizer, model, config),
                                             code_vocabulary=codes, with_attribution=False))  # fmt: skip
    if findings:
        logger.log_findings(step, findings)


def _write_probe_config(run_dir: Path, cfg: Any) -> None:
    """``ehrdebug.toml`` in the run dir, so ``ehrdebug doctor RUN`` knows the tokens, fields and prefix."""
    lines = ["[ehrdebug]"]
    for key in ("structural_tokens", "end_token", "text_field", "target_field", "label_field", "patient_field",
                "task_prefix", "max_length", "max_target_length"):  # fmt: skip
        value = getattr(cfg, key)
        if value in ("", [], None):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    (run_dir / "ehrdebug.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def evaluate_checkpoint(path: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-run the evaluation of a run (its latest checkpoint) or a checkpoint directory."""
    import torch

    from recipes.train import data as D
    from recipes.train.device import pick_device
    from recipes.train.generate import eval_loss

    path = Path(path)
    run_dir = path if (path / "run.json").is_file() else path.parent.parent
    if config is None:
        info = run_dir / "run.json"
        if not info.is_file():
            raise UserError(f"no run.json above {path}; pass the config")
        config = json.loads(info.read_text())["config"]
    ckpt = _latest_checkpoint(path) if (path / "checkpoints").is_dir() else path
    if ckpt is None:
        raise UserError(f"no checkpoint in {path}")
    tokenizer, model, _, task = _setup(config, ckpt)
    device = pick_device(config["device"])
    model.to(device)
    torch.manual_seed(config["seed"])
    records = D.load_records(config, config["data"]["eval_split"])
    features = D.make_features(task.pairs(records, config), tokenizer, {**config, "drop_string_columns": True})
    metrics = {"eval_loss": eval_loss(model, features, D.make_collator(tokenizer, model, config), device)}
    metrics.update(task.evaluate(model, tokenizer, records, config, device, D.code_vocabulary(config))[0])
    return metrics


def recipe_main(name: str, argv: list[str] | None = None) -> int:
    """``python -m recipes.train.<name> [CONFIG] [key=value ...]``: train that recipe, print the run dir."""
    import sys

    from recipes.train.config import load_config

    args = sys.argv[1:] if argv is None else argv
    config = load_config(args[0] if args and "=" not in args[0] else None, [a for a in args if "=" in a] + [f"recipe={name}"])
    print(run_training(config))
    return 0
