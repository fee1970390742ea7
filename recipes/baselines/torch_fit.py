"""A small, readable PyTorch fitting loop for the neural baselines (LSTM, Med2Vec and its heads).

The baselines are small and single-process, so they do not need the training layer's engine
(accelerate, LoRA, resume); they need the same run-directory output: train losses every
``log_every`` steps, an evaluation per epoch, early stopping on a validation metric, the best weights
checkpointed as safetensors (``RunLogger.save_checkpoint``, older steps pruned) and restored at the end.
"""

from __future__ import annotations

import copy
import math
import random
import shutil
import time
from collections.abc import Callable
from typing import Any


def seed_all(seed: int, threads: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(int(threads))


def batches(n: int, size: int, seed: int, epoch: int) -> list[list[int]]:
    """A shuffled partition of ``range(n)`` that depends only on seed and epoch (reproducible)."""
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def higher_is_better(metric: str) -> bool:
    return "loss" not in metric and "brier" not in metric


def fit_keys(
    prefix: str = "train",
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int | None,
    max_minutes: float | None,
    log_every: int = 10,
) -> dict[str, Any]:
    """The schema keys (``recipes.train.schema.Key``) of one ``fit`` phase under ``prefix``, with its defaults."""
    from recipes.train.schema import Key, NonNegFloat, PosFloat, PosInt

    return {
        f"{prefix}.epochs": Key(PosInt, epochs, "passes over the training records at most"),
        f"{prefix}.batch_size": Key(PosInt, batch_size, "records per step"),
        f"{prefix}.lr": Key(PosFloat, lr, "AdamW learning rate"),
        f"{prefix}.weight_decay": Key(NonNegFloat, weight_decay, "AdamW weight decay"),
        f"{prefix}.patience": Key(
            PosInt | None, patience, "epochs without improvement before stopping; null = off"
        ),
        f"{prefix}.max_minutes": Key(
            PosFloat | None, max_minutes, "stop after this much training time; null = none"
        ),
        f"{prefix}.log_every": Key(PosInt, log_every, "steps between train events"),
    }


def fit(model: Any, n_train: int, make_batch: Callable[[list[int]], dict[str, Any]], loss_fn: Callable[[Any, dict[str, Any]], Any],
        evaluate: Callable[[Any], dict[str, float]], fit_config: dict[str, Any], log: Any, *, metric: str, seed: int,
        phase: str = "", first_step: int = 0, history: dict[str, list[dict[str, Any]]] | None = None,
        checkpoint_extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``model`` for ``fit_config["epochs"]`` (early stopping on ``metric``); returns the loop state.

    ``fit_config`` holds ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``patience`` (null = off) and
    ``max_minutes`` (null = no limit). Steps continue from ``first_step`` so two phases share one log.
    """
    import torch

    history = history if history is not None else {"train": [], "eval": []}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=float(fit_config["lr"]), weight_decay=float(fit_config.get("weight_decay", 0.0))
    )
    size = int(fit_config["batch_size"])
    log_every = int(fit_config.get("log_every", 10))
    patience = fit_config.get("patience")
    state: dict[str, Any] = {
        "step": first_step,
        "best": None,
        "best_step": None,
        "bad": 0,
        "epochs_done": 0.0,
        "seconds": 0.0,
    }
    best_weights = copy.deepcopy(model.state_dict())
    started = time.perf_counter()
    for epoch in range(int(fit_config["epochs"])):
        model.train()
        parts = batches(n_train, size, seed, epoch)
        for b, idx in enumerate(parts):
            loss = loss_fn(model, make_batch(idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            state["step"] += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"{phase or 'training'} loss became {value} at step {state['step']}")
            if state["step"] % log_every == 0 or b == len(parts) - 1:
                row = {"step": state["step"], "loss": value, "epoch": round(epoch + (b + 1) / len(parts), 4)}
                log.log_train(
                    state["step"],
                    loss=value,
                    epoch=row["epoch"],
                    grad_norm=float(grad_norm),
                    **({"phase": phase} if phase else {}),
                )
                history["train"].append({**row, **({"phase": phase} if phase else {})})
        state["epochs_done"] = epoch + 1
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        log.log_eval(state["step"], {**metrics, **({"phase": phase} if phase else {})})
        history["eval"].append({"step": state["step"], **metrics, **({"phase": phase} if phase else {})})
        value = metrics[metric]
        improved = state["best"] is None or (
            value > state["best"] if higher_is_better(metric) else value < state["best"]
        )
        if improved:
            state.update(best=value, best_step=state["step"], bad=0)
            best_weights = copy.deepcopy(model.state_dict())
            _checkpoint(
                log,
                state["step"],
                model,
                optimizer,
                {"phase": phase, "epoch": epoch + 1, metric: value, **(checkpoint_extra or {})},
            )
        else:
            state["bad"] += 1
        state["seconds"] = time.perf_counter() - started
        if patience is not None and state["bad"] >= int(patience):
            log.alert(
                state["step"], "info", f"early stopping: no improvement of {metric} in {patience} epochs"
            )
            break
        if fit_config.get("max_minutes") and state["seconds"] > 60 * float(fit_config["max_minutes"]):
            log.alert(state["step"], "info", f"stopped after max_minutes={fit_config['max_minutes']}")
            break
    state["seconds"] = time.perf_counter() - started
    model.load_state_dict(best_weights)
    state["history"] = history
    return state


def _checkpoint(log: Any, step: int, model: Any, optimizer: Any, extra: dict[str, Any]) -> None:
    """Save the new best weights (with optimizer state for resuming elsewhere) and drop older checkpoints."""
    path = log.save_checkpoint(step, model, optimizer=optimizer, extra_state={"best_step": step, **extra})
    if path is None:
        return
    for other in path.parent.glob("step-*"):
        if other != path and other.name.split("-")[-1].isdigit() and other.name.startswith("step-"):
            shutil.rmtree(other, ignore_errors=True)


def count_parameters(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(total), int(trainable)
