"""Evaluation pieces of the training layer: the weighted eval loss, probes at evaluations, the probe
config a run ships (ehrdebug.toml), and re-evaluating a saved checkpoint of any task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from recipes.train.task import get_task


def eval_loss(model: Any, task: Any, features: list[dict[str, Any]], collate: Any, device: Any, batch_size: int = 32) -> float:
    """Mean loss over ``features``, weighted by the label positions the loss counts (-100 is ignored)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            batch = collate(features[i : i + batch_size])
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            labels = batch.get("labels")
            n = int((labels != -100).sum()) if labels is not None and labels.dtype != torch.float else len(features[i : i + batch_size])
            if n:  # a batch with no counted label (no masked position) has no loss
                total += float(task.loss(model, batch)) * n
                count += n
    return total / max(count, 1)


def run_probes(probes: Any, model: Any, tokenizer: Any, config: dict[str, Any], step: int, logger: Any,
                records: list[dict[str, Any]], task: Any, info: dict[str, Any], suite: bool) -> None:  # fmt: skip
    """Caller-supplied probes, and ``probes.model_suite.run_model_probes`` when ``suite`` and the task has inputs for it."""
    findings: list[Any] = []
    if probes is not None:
        findings.extend(probes(model, tokenizer, config, step) or [])
    inputs = task.probe_inputs(config, model, tokenizer) if suite else None
    if inputs is not None:
        from probes.model_suite import run_model_probes

        findings.extend(run_model_probes(model, tokenizer, records, task.probe_config(config),
                                         base_vocab_size=info.get("base_vocab_size"), with_attribution=False, **inputs))  # fmt: skip
    if findings:
        logger.log_findings(step, findings)


def write_probe_config(run_dir: Path, cfg: Any) -> None:
    """``ehrdebug.toml`` in the run dir, so ``ehrdebug doctor RUN`` knows the tokens, fields and prefix."""
    lines = ["[ehrdebug]"]
    for key in ("structural_tokens", "end_token", "text_field", "target_field", "label_field", "patient_field",
                "task_prefix", "max_length", "max_target_length"):  # fmt: skip
        value = getattr(cfg, key)
        if value in ("", [], None):
            continue
        lines.append(f"{key} = {json.dumps(value)}")
    (run_dir / "ehrdebug.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def setup_model(config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any], Any]:
    """(tokenizer, model, info, task) as the loop starts them: built, LoRA-wrapped, checkpoint weights loaded."""
    from recipes.train import checkpoint as C
    from recipes.train import engine as E

    task = get_task(config["recipe"])
    model, tokenizer, info = task.build(config, checkpoint)
    if config["use_lora"]:
        model = E.apply_lora(model, config, task)
    if checkpoint is not None:
        C.load_weights(model, checkpoint)
    return tokenizer, model, info, task


def evaluate_checkpoint(path: str | Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-run the evaluation of a run (its latest checkpoint) or a checkpoint directory."""
    import torch

    from recipes.train.checkpoint import latest_checkpoint
    from recipes.train.device import pick_device

    path = Path(path)
    run_dir = path if (path / "run.json").is_file() else path.parent.parent
    if config is None:
        info = run_dir / "run.json"
        if not info.is_file():
            raise UserError(f"no run.json above {path}; pass the config")
        config = json.loads(info.read_text())["config"]
    ckpt = latest_checkpoint(path) if (path / "checkpoints").is_dir() else path
    if ckpt is None:
        raise UserError(f"no checkpoint in {path}")
    tokenizer, model, _, task = setup_model(config, ckpt)
    device = pick_device(config["device"])
    model.to(device)
    torch.manual_seed(config["seed"])
    data = task.datasets(config, tokenizer)
    metrics = {"eval_loss": eval_loss(model, task, data.eval, task.collator(tokenizer, model, config, train=False), device)}
    metrics.update(task.evaluate(model, tokenizer, data.eval_records, config, device, prefix="eval")[0])
    return metrics
