"""The findings the coding recipe logs while it trains: coverage at the start, loss vs accuracy at each evaluation.

Seed 003 worked its coverage out by hand (1,602 samples, 2 x 4, drop_last) and could not say why a loss
of 0.05 came with 0% strict accuracy. Both answers come from the probes the doctor runs, fed with the
run's real config, data size and logged metrics.
"""

from __future__ import annotations

import os
from typing import Any


def training_plan(config: dict[str, Any]) -> Any:
    """The run's ``TrainingPlan``: the loop's global batch is split over the processes of a launcher."""
    from probes.data_coverage import TrainingPlan

    devices = max(1, int(os.environ.get("WORLD_SIZE", "1")))
    return TrainingPlan(per_device_batch=max(1, int(config["batch_size"]) // devices), grad_accum=int(config["grad_accum"]),
                        devices=devices, epochs=float(config["epochs"]), drop_last=bool(config.get("drop_last")),
                        max_steps=int(config["max_steps"] or -1))  # fmt: skip


def coverage_findings(config: dict[str, Any], n_train: int) -> list[Any]:
    from probes.data_coverage import probe_coverage

    return probe_coverage(n_train, training_plan(config), subject="training data (at start)")


def history_of(history: dict[str, Any]) -> Any:
    """A runstore ``History`` from the loop's in-memory record (train points and eval metric dicts)."""
    from ehrdebug.runstore.history import History

    out = History()
    for point in history.get("train", []):
        out.add_log(int(point["step"]), {"loss": point["loss"]}, point.get("epoch"))
    for point in history.get("eval", []):
        out.add_log(int(point["step"]), {k: v for k, v in point.items() if k != "step"})
    return out


def loss_accuracy_findings(history: dict[str, Any]) -> list[Any]:
    from probes.metrics import loss_vs_accuracy

    return loss_vs_accuracy(history_of(history))
