"""data.coverage: how many samples an epoch really uses and how many optimizer steps a run takes.

The arithmetic mirrors the installed HF Trainer (transformers v5 ``Trainer.set_initial_training_values``
and ``_inner_training_loop``) and accelerate's ``BatchSamplerShard``:

- ``drop_last`` acts on *micro-batches* of ``per_device_batch`` (per device), never on the effective
  batch: micro-batches per device = ``floor(N / b) // devices`` with drop_last, else ``ceil(N / b)``
  spread over devices (accelerate's ``even_batches`` repeats samples from the start to fill the last round).
- optimizer steps per epoch = ``ceil(micro_batches / gradient_accumulation_steps)`` (at least 1): the last
  step of an epoch accumulates only the leftover micro-batches; nothing carries over to the next epoch.
- total steps = ``ceil(num_train_epochs * steps_per_epoch)`` unless ``max_steps > 0``.

The naive arithmetic (``N // effective_batch`` with drop_last "dropping" ``N % effective_batch``) is
computed beside it, because that is what people write in their reports (seed 003) and it is wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Severity

PROBE = "data.coverage"
# share of the training set dropped per epoch above which drop_last is a warning
DROP_WARN_SHARE = 0.05

# TrainingArguments keys (and run.json aliases) -> TrainingPlan fields
_ARG_KEYS = {
    "per_device_train_batch_size": "per_device_batch",
    "per_device_batch": "per_device_batch",
    "gradient_accumulation_steps": "grad_accum",
    "grad_accum": "grad_accum",
    "num_train_epochs": "epochs",
    "epochs": "epochs",
    "dataloader_drop_last": "drop_last",
    "drop_last": "drop_last",
    "max_steps": "max_steps",
    "world_size": "devices",
    "devices": "devices",
    "batch_size": "per_device_batch",
    "num_epochs": "epochs",
}


MAX_EPOCHS = 1_000_000  # far beyond any real run; keeps the step arithmetic finite


@dataclass
class TrainingPlan:
    """The few TrainingArguments that decide coverage; defaults are HF TrainingArguments' defaults."""

    per_device_batch: int = 8
    grad_accum: int = 1
    devices: int = 1
    epochs: float = 3.0
    drop_last: bool = False
    max_steps: int = -1

    def validate(self) -> None:
        for name in ("per_device_batch", "grad_accum", "devices"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise UserError(f"epochs must be positive when max_steps is not set, got {self.epochs}")
        if self.epochs > MAX_EPOCHS:  # epochs x steps would overflow to inf (issue 15: one line, not exit 3)
            raise UserError(f"epochs must be at most {MAX_EPOCHS:,}, got {self.epochs:.7g}")


def plan_from_mapping(data: dict[str, Any], base: TrainingPlan | None = None) -> TrainingPlan:
    """Read a plan from TrainingArguments JSON (``args.to_dict()``), or a run.json that nests one."""
    found = find_training_args(data)
    plan = TrainingPlan(**asdict(base)) if base else TrainingPlan()
    for key, attr in _ARG_KEYS.items():
        if key in found and found[key] is not None:
            setattr(plan, attr, _arg_value(key, attr, found[key]))
    return plan


def _arg_value(key: str, attr: str, value: Any) -> Any:
    """A training argument as the plan needs it; a UserError naming the key for a value of the wrong type."""
    if attr == "drop_last":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise UserError(f"training argument {key} must be true or false, got {value!r}")
    if attr == "epochs":
        number = _number(value)
        if number is None:
            raise UserError(f"training argument {key} must be a number, got {value!r}")
        return number
    number = _number(value)
    if number is None or not number.is_integer():
        raise UserError(f"training argument {key} must be a whole number, got {value!r}")
    return int(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def find_training_args(data: Any, depth: int = 0) -> dict[str, Any]:
    """The first (breadth-first) dict that holds a batch-size or accumulation key."""
    if not isinstance(data, dict) or depth > 4:
        return {}
    if any(k in data for k in ("per_device_train_batch_size", "gradient_accumulation_steps", "dataloader_drop_last")):
        return data
    nested = [v for v in data.values() if isinstance(v, dict)]
    if any(k in data for k in ("batch_size", "per_device_batch", "grad_accum")) and not any(find_training_args(v, depth + 1) for v in nested):
        return data
    for value in data.values():
        hit = find_training_args(value, depth + 1)
        if hit:
            return hit
    return {}


def coverage_figures(n_samples: int, plan: TrainingPlan) -> dict[str, Any]:
    """Every figure of one training run over ``n_samples`` examples, as the Trainer computes them."""
    b, ga, p = int(plan.per_device_batch), int(plan.grad_accum), int(plan.devices)
    n = int(n_samples)
    sampler_batches = n // b if plan.drop_last else math.ceil(n / b)
    if sampler_batches % p == 0 or plan.drop_last:
        micro = sampler_batches // p
    else:  # accelerate even_batches: every device gets one more, filled with samples from the start
        micro = sampler_batches // p + 1
    drawn = micro * b * p  # sample slots filled per epoch across devices
    if plan.drop_last:
        used = min(n, drawn)
        dropped = n - used
        repeated = 0
    else:
        used = n
        dropped = 0
        repeated = max(0, drawn - n) if p > 1 else 0
        drawn = n if p == 1 else drawn
    updates = max(micro // ga + int(micro % ga > 0), 1) if micro else 0
    last_micro = (micro % ga or ga) if micro else 0
    if plan.max_steps > 0:
        total_steps = int(plan.max_steps)
        epochs_run = (total_steps // updates + int(total_steps % updates > 0)) if updates else 0
    else:
        total_steps = math.ceil(plan.epochs * updates)
        epochs_run = math.ceil(plan.epochs)
    exposures = _exposures(total_steps, updates, micro, ga, b * p, drawn)
    effective = b * ga * p
    naive_steps = n // effective if plan.drop_last else math.ceil(n / effective)
    naive_dropped = n % effective if plan.drop_last else 0
    naive_total = math.ceil(plan.epochs * naive_steps) if plan.max_steps <= 0 else int(plan.max_steps)
    return {
        "samples": n,
        "per_device_batch": b,
        "gradient_accumulation_steps": ga,
        "devices": p,
        "effective_batch": effective,
        "drop_last": plan.drop_last,
        "epochs": plan.epochs,
        "max_steps": plan.max_steps,
        "micro_batches_per_epoch_per_device": micro,
        "optimizer_steps_per_epoch": updates,
        "micro_batches_in_last_step": last_micro,
        "samples_in_last_step": min(last_micro * b * p, drawn - (micro - last_micro) * b * p) if micro else 0,
        "samples_used_per_epoch": used,
        "samples_dropped_per_epoch": dropped,
        "samples_repeated_per_epoch": repeated,
        "total_optimizer_steps": total_steps,
        "epochs_run": epochs_run,
        "sample_exposures": exposures,
        "times_each_sample_seen": round(exposures / n, 4) if n else 0.0,
        "naive_steps_per_epoch": naive_steps,
        "naive_total_steps": naive_total,
        "naive_samples_dropped_per_epoch": naive_dropped,
    }


def _exposures(total_steps: int, updates: int, micro: int, ga: int, per_round: int, drawn: int) -> int:
    """Sample slots processed in ``total_steps`` optimizer steps (a partial last epoch included)."""
    if not updates:
        return 0
    full, rest = divmod(total_steps, updates)
    partial = min(rest * ga, micro) * per_round
    return full * drawn + min(partial, drawn)


def probe_coverage(n_samples: int, plan: TrainingPlan, subject: str = "") -> list[Finding]:
    """Coverage figures (ok/info) plus a warn/fail finding when drop_last or accumulation wastes data."""
    plan.validate()
    fig = coverage_figures(n_samples, plan)
    findings: list[Finding] = []
    rule_steps = (
        "HF Trainer: micro-batches = floor(N/b) (drop_last) or ceil(N/b), split over devices; "
        "steps/epoch = ceil(micro-batches / gradient_accumulation_steps); total = ceil(epochs × steps/epoch)"
    )
    notes: list[str] = []
    severity = Severity.OK
    if fig["naive_steps_per_epoch"] != fig["optimizer_steps_per_epoch"] or fig["naive_samples_dropped_per_epoch"] != fig["samples_dropped_per_epoch"]:
        severity = Severity.INFO
        notes.append(
            f"naive arithmetic N//effective_batch gives {fig['naive_steps_per_epoch']} steps/epoch and "
            f"{fig['naive_samples_dropped_per_epoch']} dropped; the Trainer takes {fig['optimizer_steps_per_epoch']} "
            f"steps/epoch and drops {fig['samples_dropped_per_epoch']} (drop_last acts on micro-batches of "
            f"{fig['per_device_batch']}, not on the effective batch of {fig['effective_batch']})"
        )
    if fig["micro_batches_per_epoch_per_device"] and fig["micro_batches_in_last_step"] != fig["gradient_accumulation_steps"]:
        severity = max(severity, Severity.INFO)
        notes.append(
            f"the last optimizer step of each epoch accumulates {fig['micro_batches_in_last_step']} of "
            f"{fig['gradient_accumulation_steps']} micro-batches ({fig['samples_in_last_step']} samples instead of "
            f"{fig['effective_batch']})"
        )
    if fig["samples_repeated_per_epoch"]:
        notes.append(f"{fig['samples_repeated_per_epoch']} samples are repeated per epoch to even out the last round across devices")
    title = (
        f"{fig['samples_used_per_epoch']:,}/{fig['samples']:,} samples per epoch, effective batch {fig['effective_batch']}, "
        f"{fig['optimizer_steps_per_epoch']} steps/epoch, {fig['total_optimizer_steps']} steps in all, "
        f"each sample seen {fig['times_each_sample_seen']:g}×"
    )
    evidence = dict(fig)
    if notes:
        evidence["notes"] = notes
    findings.append(Finding(PROBE, severity, title, evidence=evidence, rule=rule_steps, subject=subject,
                            recipes=["check-drop-last"] if severity > Severity.OK and fig["samples_dropped_per_epoch"] else []))
    findings.extend(_problems(fig, subject))
    return findings


def _problems(fig: dict[str, Any], subject: str) -> list[Finding]:
    out: list[Finding] = []
    n = fig["samples"]
    if fig["micro_batches_per_epoch_per_device"] == 0:
        out.append(Finding(
            PROBE, Severity.FAIL,
            f"no training batch at all: {n} samples < one micro-batch of {fig['per_device_batch']}×{fig['devices']} with drop_last",
            evidence={k: fig[k] for k in ("samples", "per_device_batch", "devices", "drop_last")},
            rule="drop_last discards an incomplete micro-batch; with fewer samples than one batch nothing is left",
            recipes=["check-drop-last"], subject=subject,
        ))
        return out
    dropped = fig["samples_dropped_per_epoch"]
    if dropped:
        share = dropped / n
        sev = Severity.WARN if share >= DROP_WARN_SHARE else Severity.INFO
        out.append(Finding(
            PROBE, sev,
            f"drop_last discards {dropped} of {n} samples every epoch ({share:.1%}); with shuffling a different "
            f"{dropped} each epoch",
            evidence={"samples_dropped_per_epoch": dropped, "dropped_share": round(share, 4),
                      "micro_batch": fig["per_device_batch"] * fig["devices"]},
            rule=f"warn when drop_last discards at least {DROP_WARN_SHARE:.0%} of the training set per epoch",
            recipes=["check-drop-last"], subject=subject,
        ))
    if fig["micro_batches_per_epoch_per_device"] < fig["gradient_accumulation_steps"]:
        out.append(Finding(
            PROBE, Severity.WARN,
            f"an epoch has {fig['micro_batches_per_epoch_per_device']} micro-batches per device but gradient "
            f"accumulation is {fig['gradient_accumulation_steps']}: one small optimizer step per epoch",
            evidence={k: fig[k] for k in ("micro_batches_per_epoch_per_device", "gradient_accumulation_steps",
                                          "optimizer_steps_per_epoch", "total_optimizer_steps")},
            rule="gradient_accumulation_steps should not exceed the micro-batches in one epoch",
            recipes=["check-drop-last"], subject=subject,
        ))
    return out
