"""The one training loop every task runs on, in one readable function (torchtune style).

The task (``recipes.train.task``, looked up by ``config["recipe"]``) builds the model and tokenizer,
turns records into features, batches them, computes the loss and evaluates. The loop does the rest, the
same way for every task: output-folder check → seed → build (+ ``init_from`` in the task, + LoRA) →
AdamW + warmup schedule → ``accelerate`` (DDP/FSDP under a launcher, autocast on CUDA) → for each epoch,
for each batch: forward, backward, accumulate, clip, step; log; evaluate every ``eval_every`` steps
(loss, task metrics, samples, probes); early-stop on patience; checkpoint (weights, optimizer,
scheduler, RNG state, data position). SIGTERM/SIGINT checkpoint at the next step boundary and exit
non-zero; ``resume=true`` continues exactly. At the end: best weights on the test split, loss curves
PNG and ``artifacts/metrics_summary.json`` with a ``test`` block. Only rank 0 writes the run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.initial_rows import save_initial_rows
from ehrdebug.runstore.evidence import BatchRecorder, mlm_settings
from recipes.train.evaluation import (
    eval_loss,
    evaluate_checkpoint,
    run_probes,
    setup_model,
    write_probe_config,
)
from recipes.train.task import get_task, task_module

__all__ = ["evaluate_checkpoint", "recipe_main", "run_training", "setup_model", "task_module"]


def run_training(config: dict[str, Any], out_dir: str | Path | None = None, probes: Any = None) -> Path:
    """Train ``config["recipe"]`` into ``out_dir`` (or ``config["out"]``) and return the run directory."""
    import torch
    from transformers import get_scheduler

    from ehrdebug.runstore import RunLogger
    from recipes.train import checkpoint as C
    from recipes.train import engine as E
    from recipes.train.data import epoch_batches
    from recipes.train.report import write_artifacts

    task = get_task(config["recipe"])
    run_dir = Path(out_dir or config["out"])
    checkpoint = _check_out_dir(run_dir, bool(config["resume"]))  # before anything is loaded
    E.check_resume_engine(config, checkpoint is not None)
    saved = C.read_state(checkpoint) if checkpoint is not None else None
    accelerator = E.make_accelerator(config)
    C.seed_everything(int(config["seed"]))
    if config["threads"]:
        torch.set_num_threads(int(config["threads"]))

    # -- model, tokenizer, data ------------------------------------------------------------------------
    model, tokenizer, info = E.build(task, config, checkpoint)  # a model config the library refuses: one line
    if config["use_lora"]:
        model = E.apply_lora(model, config, task)
    if checkpoint is not None:
        C.load_weights(model, checkpoint)
    info["parameters"] = E.trainable_share(model)
    _print(accelerator, f"trainable parameters: {info['parameters']['trainable']:,} of {info['parameters']['total']:,} "
                        f"({100 * info['parameters']['share']:.2f}%)")  # fmt: skip
    data = task.datasets(config, tokenizer)
    collate = task.collator(tokenizer, model, config, train=True)
    eval_collate = task.collator(tokenizer, model, config, train=False)

    # -- optimisation -----------------------------------------------------------------------------------
    n_batches = len(data.train) // config["batch_size"] if config.get("drop_last") else math.ceil(len(data.train) / config["batch_size"])
    steps_per_epoch = max(1, math.ceil(n_batches / config["grad_accum"]))
    total_steps = int(config["max_steps"] or steps_per_epoch * config["epochs"])
    eval_every = int(config["eval_every"] or steps_per_epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    make_optimizer = getattr(task, "make_optimizer", None)  # a task may bring its own (QLoRA: paged AdamW)
    optimizer = make_optimizer(params, config) if make_optimizer else torch.optim.AdamW(params, lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))
    scheduler = get_scheduler(config["scheduler"] if config["scheduler"] != "constant" else "constant_with_warmup",
                              optimizer, num_warmup_steps=int(config["warmup_steps"]), num_training_steps=total_steps)  # fmt: skip
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "best_step": None, "bad_evals": 0,
                             "history": {"train": [], "eval": []}, "train_seconds": 0.0}  # fmt: skip
    if checkpoint is not None and saved is not None:
        state.update(saved["loop"])
        C.load_optimizer(checkpoint, optimizer, scheduler)
    model, optimizer = accelerator.prepare(model, optimizer)  # the scheduler steps once per optimizer step, as here
    device = accelerator.device
    raw = accelerator.unwrap_model(model)

    accelerator.wait_for_everyone()  # every rank checked the folder before rank 0 writes into it
    patience = config["early_stopping"]["patience"]
    metric = config["early_stopping"]["metric"]
    logger = RunLogger(
        run_dir, config, architecture=task.ARCHITECTURE, size=config["size"], task=task.TASK,
        base_model=str(config["base"] or config["init_from"] or ""), tokenizer="checkpoints (each step-N holds its tokenizer)",
        data=task.data_files(config), resume=checkpoint is not None or bool(config["resume"]),
        resumed_from_step=int(state["step"]) if checkpoint is not None else None,  # the checkpoint's step
        rank=accelerator.process_index,
        extra={"recipe": config["recipe"], "tokens": info, "device": str(device), "amp": accelerator.mixed_precision,
               "processes": accelerator.num_processes, "parameters": info["parameters"], "fixes": config.get("fixes") or [],
               "train_examples": len(data.train),  # rows trained on (a multitask record gives one per task)
               "prompt_format": task.prompt_format(config, tokenizer)},
    )  # fmt: skip
    task_findings = getattr(task, "findings", None)  # (config, data, history, metrics|None) -> findings
    if accelerator.is_main_process:
        write_probe_config(run_dir, task.probe_config(config))
        if task_findings is not None and checkpoint is None:  # at the start (e.g. the coverage arithmetic)
            logger.log_findings(0, task_findings(config, data, state["history"], None) or [])
        start_findings = getattr(task, "start_findings", None)  # (model, config, steps/epoch): before epoch 1 (issue 12)
        if start_findings is not None and checkpoint is None:
            for finding in start_findings(raw, config, steps_per_epoch) or []:
                logger.log_findings(0, [finding])
                _print(accelerator, f"[{finding.severity.name.lower()}] {finding.probe}: {finding.title}")
        if checkpoint is None:  # the new rows before training: the doctor's reference (ehrdebug.initial_rows)
            save_initial_rows(run_dir, raw, info.get("base_vocab_size"))

    def evaluate(step: int) -> bool:
        """Log eval metrics and samples; return True when early stopping says stop."""
        metrics = {"eval_loss": eval_loss(raw, task, data.eval, eval_collate, device)}
        task_metrics, samples = task.evaluate(raw, tokenizer, data.eval_records, config, device, prefix="eval")
        metrics.update(task_metrics)
        logger.log_eval(step, metrics)
        for s in samples[: int(config.get("num_log_samples", 4))]:
            logger.log_sample(step, **s)
        state["history"]["eval"].append({"step": step, **metrics})
        if task_findings is not None and accelerator.is_main_process:  # the task's own probes at each evaluation
            logger.log_findings(step, task_findings(config, data, state["history"], metrics) or [])
        if accelerator.is_main_process:
            suite = config["model_probes"] in (True, "every_eval")
            run_probes(probes, raw, tokenizer, config, step, logger, data.eval_records, task, info, suite)
        _print(accelerator, f"[eval step {step}] " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if C.finite(v)))
        value = metrics.get(metric, metrics["eval_loss"])
        if _improved(metric, value, state["best"], float(config["early_stopping"]["min_delta"])):
            state["best"], state["best_step"], state["bad_evals"] = value, step, 0
        else:
            state["bad_evals"] += 1
        save(step)
        warm = step >= float(config["early_stopping"]["min_epochs"] or 0) * steps_per_epoch  # no stop before min_epochs
        return patience is not None and warm and state["bad_evals"] >= int(patience)

    def save(step: int) -> None:
        """Rank 0 writes weights, tokenizer, optimizer/scheduler, loop and RNG state; the others wait."""
        state["training"] = raw.training  # the mode the next step runs in (see the loop below)
        weights = _saveable(model, raw, accelerator)
        if accelerator.is_main_process:
            path = logger.save_checkpoint(step, weights, tokenizer, optimizer, scheduler,
                                          extra_state={"loop": dict(state), "rng": C.rng_state()})  # fmt: skip
            if path is not None and hasattr(raw, "peft_config"):
                raw.save_pretrained(str(path / C.ADAPTER_DIR))  # adapter-only weights (and resume reads them)
            C.prune(run_dir, int(config["keep_checkpoints"]), state["best_step"] if config["save_best"] else None)
        accelerator.wait_for_everyone()

    # -- the loop ---------------------------------------------------------------------------------------
    stop = state["step"] >= total_steps
    started = time.time() - state["train_seconds"]
    accum = int(config["grad_accum"])
    if saved is not None and "rng" in saved:
        C.set_rng_state(saved["rng"])  # after building: the next draws are those the interrupted run made
    kept = BatchRecorder(run_dir, tokenizer=tokenizer, settings=mlm_settings(config.get("mlm")), enabled=accelerator.is_main_process and checkpoint is None)  # fmt: skip
    # An evaluation leaves the model in eval mode (no dropout) until the epoch ends, as the loop always did;
    # the BART/T5 figures depend on it (see the report of issue 11). The mode is checkpointed so a resumed run
    # continues in the mode the interrupted one was in.
    mode = bool(saved["loop"].get("training", True)) if saved is not None else True
    with logger, E.Interrupts() as interrupts:
        while not stop:
            model.train(mode if state["batch_in_epoch"] else True)
            mode = True
            batches = epoch_batches(data.train, config["batch_size"], config["seed"], state["epoch"])
            if config.get("drop_last") and len(batches) > 1 and len(batches[-1]) < config["batch_size"]:
                batches = batches[:-1]  # dataloader_drop_last: the incomplete last batch is never seen
            for b in range(state["batch_in_epoch"], len(batches)):
                batch = collate([data.train[i] for i in E.shard(batches[b], accelerator)])
                kept.add(batch)  # the first few batches as collated, before the model: the doctor's evidence
                batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
                sync = (b + 1) % accum == 0 or b + 1 == len(batches)
                with accelerator.no_sync(model) if not sync else _nullcontext():
                    with accelerator.autocast():
                        loss = task.loss(model, batch) / accum
                    accelerator.backward(loss)
                state["batch_in_epoch"] = b + 1
                if not sync:
                    continue
                grad_norm = accelerator.clip_grad_norm_(params, float(config["max_grad_norm"]))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                step = state["step"]
                state["train_seconds"] = time.time() - started
                epoch = state["epoch_float"] = state["epoch"] + (b + 1) / len(batches)
                if step % config["log_every"] == 0 or step == 1:
                    value = float(accelerator.reduce(loss.detach(), reduction="mean")) * accum
                    logger.log_train(step, loss=value, lr=scheduler.get_last_lr()[0], epoch=round(epoch, 4),
                                     grad_norm=float(grad_norm))  # fmt: skip
                    state["history"]["train"].append({"step": step, "loss": value, "epoch": epoch})
                out_of_time = config["max_minutes"] is not None and state["train_seconds"] > 60 * float(config["max_minutes"])
                if step % eval_every == 0 or step >= total_steps or out_of_time:
                    if evaluate(step):
                        logger.alert(step, "info", f"early stopping: no improvement of {metric} in {patience} evaluations")
                        stop = True
                signum = interrupts.requested(accelerator)
                if signum is not None:
                    _interrupt(step, signum, state, save, logger, accelerator, evaluated=step % eval_every == 0)
                if step >= total_steps or out_of_time:
                    stop = True
                if stop:
                    break
            else:
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
        summary = _finish(raw, tokenizer, config, task, state, run_dir, device, info)
        if accelerator.is_main_process:
            if config["model_probes"] == "final":  # once, on the best weights (tens of seconds on a CPU)
                run_probes(None, raw, tokenizer, config, state["step"], logger, data.eval_records, task, info, True)
            write_artifacts(run_dir, state["history"], summary)
        logger.finish("finished", **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
    if accelerator.is_main_process:  # artifacts/summary.md: the figures and plots, readable off the pod alone
        from recipes.bench.run_summary import write_run_summary

        write_run_summary(run_dir)
    accelerator.wait_for_everyone()
    return run_dir


def _interrupt(step: int, signum: int, state: dict[str, Any], save: Any, logger: Any, accelerator: Any, evaluated: bool) -> None:
    """Checkpoint at this step boundary (unless the evaluation just did), record why, exit non-zero."""
    from recipes.train.engine import TrainingInterrupted

    stopped = TrainingInterrupted(signum)
    if not evaluated:
        save(step)
    logger.finish("interrupted", signal=stopped.signal, reason=f"{stopped.signal} received; checkpoint at step {step}")
    _print(accelerator, f"interrupted by {stopped.signal}: checkpoint at step {step}; resume=true continues")
    raise stopped


def _nullcontext() -> Any:
    import contextlib

    return contextlib.nullcontext()


def _print(accelerator: Any, text: str) -> None:
    if accelerator.is_main_process:
        print(text, flush=True)


def _saveable(model: Any, raw: Any, accelerator: Any) -> Any:
    """What ``RunLogger.save_checkpoint`` writes as the full model: a LoRA model merged into a copy of its
    base (so the doctor loads it like any checkpoint); under FSDP the gathered full state dict."""
    import copy

    if hasattr(raw, "peft_config"):
        return copy.deepcopy(raw).merge_and_unload() if accelerator.is_main_process else None
    if accelerator.distributed_type.name == "FSDP":
        state = accelerator.get_state_dict(model)  # a collective: every rank takes part
        return _WithState(raw, state) if accelerator.is_main_process else None
    return raw


class _WithState:
    """A model whose ``save_pretrained`` writes a given (gathered) state dict."""

    def __init__(self, model: Any, state: dict[str, Any]) -> None:
        self.model, self.state, self.config = model, state, model.config

    def save_pretrained(self, directory: str) -> None:
        self.model.save_pretrained(directory, state_dict=self.state)


def _check_out_dir(run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run. Nothing the user had is overwritten: a
    folder that is not empty is refused unless it holds the run being resumed."""
    from recipes.train.checkpoint import latest_checkpoint

    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"out={run_dir} is a file; choose a new out= folder")
    is_run = (run_dir / "events.jsonl").is_file() and (run_dir / "run.json").is_file()
    if resume and is_run:
        return latest_checkpoint(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if is_run:
            raise UserError(f"{run_dir} already holds a run; pass resume=true to continue it or choose a new out=")
        raise UserError(f"out={run_dir} is not empty and holds no ehrdebug run; choose a new or empty folder "
                        "(nothing in it is overwritten)")  # fmt: skip
    return None


def _improved(metric: str, value: float, best: float | None, min_delta: float) -> bool:
    if best is None:
        return True
    lower_is_better = "loss" in metric or "perplexity" in metric or "brier" in metric or (metric.endswith("_rate") and "valid" not in metric)
    return value < best - min_delta if lower_is_better else value > best + min_delta


def _finish(model: Any, tokenizer: Any, config: dict[str, Any], task: Any, state: dict[str, Any], run_dir: Path,
            device: Any, info: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Reload the best checkpoint (if kept) and measure it on the test split."""
    from recipes.train.checkpoint import load_weights

    best = run_dir / "checkpoints" / f"step-{state['best_step']}"
    if config["save_best"] and state["best_step"] is not None and best.is_dir() and state["best_step"] != state["step"]:
        load_weights(model, best)
        model.to(device)
    summary: dict[str, Any] = {
        "recipe": config["recipe"], "size": config["size"], "base": str(config["base"] or config["init_from"] or ""),
        "steps": state["step"], "epochs_done": round(state.get("epoch_float", 0.0), 3),
        "train_seconds": round(state["train_seconds"], 1), "best_step": state["best_step"],
        "best_checkpoint": f"checkpoints/step-{state['best_step']}" if state["best_step"] is not None else None,
        "early_stopping_metric": config["early_stopping"]["metric"], "best_value": state["best"],
        "tokens": {k: v for k, v in info.items() if k != "added_ids"}, "parameters": info.get("parameters"),
    }  # fmt: skip
    if state["history"]["train"]:
        summary["final_train_loss"] = state["history"]["train"][-1]["loss"]
    if state["history"]["eval"]:
        summary["last_eval"] = state["history"]["eval"][-1]
        summary["best_eval"] = next((e for e in state["history"]["eval"] if e["step"] == state["best_step"]), None)
    if config["final_test"]:
        summary.update(task.final_test(model, tokenizer, config, device, run_dir))
    return summary


def recipe_main(name: str, argv: list[str] | None = None) -> int:
    """``python -m recipes.train.<name> [CONFIG] [key=value ...]``: train that recipe, print the run dir."""
    import sys

    from recipes.train.config import load_recipe_config

    args = sys.argv[1:] if argv is None else argv
    config = load_recipe_config(args[0] if args and "=" not in args[0] else None, [a for a in args if "=" in a] + [f"recipe={name}"])
    print(run_training(config))
    return 0
