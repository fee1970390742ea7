"""Evidence of a code-model run for the code-model probes, rebuilt the way the run built it.

The doctor reads a run's records; MLM batches, embedding-table sizes, the model's inputs and per-patient
test predictions are rebuilt here from the run's own ``run.json`` config through its task (the same
tokenizer, the same collator, the saved weights), so the probes judge what the run really trained on.
A run that crashed in its first step still has its config, so its batches can be rebuilt too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.findings import Finding

BATCHES = 6
BATCH_SIZE = 32


def run_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict) or "recipe" not in config:
        raise UserError(f"{path} records no training config")
    return config


def _checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint the run reports (``best_checkpoint`` of its metrics summary), else its latest."""
    from recipes.fixes.base import is_checkpoint_dir, resolve_target

    try:
        summary = json.loads((Path(run_dir) / "artifacts" / "metrics_summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    best = summary.get("best_checkpoint") if isinstance(summary, dict) else None
    if isinstance(best, str) and is_checkpoint_dir(Path(run_dir) / best):
        return Path(run_dir) / best
    return resolve_target(run_dir).checkpoint


def rebuild(run_dir: Path, weights: bool = False) -> tuple[dict[str, Any], Any, Any, Any]:
    """(config, task, model, tokenizer) of a run: the checkpoint's tokenizer (or the one the run would
    build), the model of its config, with the saved weights when ``weights``."""
    from recipes.train.task import get_task

    config = run_config(run_dir)
    task = get_task(config["recipe"])
    checkpoint = _checkpoint(run_dir)
    model, tokenizer, _ = task.build(config, checkpoint)
    if weights and checkpoint is not None:
        from recipes.train.checkpoint import load_weights

        load_weights(model, checkpoint)
    return config, task, model, tokenizer


def training_batches(run_dir: Path, n: int = BATCHES, batch_size: int = BATCH_SIZE) -> tuple[list[dict[str, Any]], Any, Any, dict[str, Any]]:
    """``n`` training batches from the run's own collator (seeded), with its tokenizer, model and config."""
    import torch

    config, task, model, tokenizer = rebuild(run_dir)
    features = task.datasets(config, tokenizer).train[: n * batch_size]
    collate = task.collator(tokenizer, model, config, train=True)
    torch.manual_seed(int(config.get("seed") or 0))
    batches = [collate(features[i:i + batch_size]) for i in range(0, len(features), batch_size)]
    return batches, tokenizer, model, config


def mlm_batch_findings(run_dir: Path) -> list[Finding]:
    from probes.mlm_batch import probe_mlm_batch

    batches, tokenizer, model, config = training_batches(run_dir)
    rate = float((config.get("mlm") or {}).get("probability", 0.15))
    return probe_mlm_batch(batches, tokenizer, mlm_probability=rate, subject=str(run_dir))


def id_range_findings(run_dir: Path) -> list[Finding]:
    from probes.id_ranges import probe_id_ranges

    batches, _, model, _ = training_batches(run_dir)
    return probe_id_ranges(batches, model, subject=str(run_dir))


def leakage_findings(run_dir: Path) -> list[Finding]:
    """The records the model reads (after the run's own exclusions), with the label the run learns."""
    from probes.leakage import probe_label_leakage
    from recipes.train.task import get_task

    config = run_config(run_dir)
    records = get_task(config["recipe"]).records(config, "train")
    return probe_label_leakage(records, label_field=config.get("label_field"), subject=str(run_dir))


def test_predictions(run_dir: Path) -> tuple[list[int], list[float], dict[str, Any]]:
    """Per-patient test probabilities of the run's saved classifier."""
    import torch

    config, task, model, tokenizer = rebuild(run_dir, weights=True)
    records = task.records(config, config["data"]["test_split"])
    field = config["label_field"]
    with torch.no_grad():
        probs = task.probabilities(model, tokenizer, records, config, torch.device("cpu"))
    return [int(r[field]) for r in records], [float(p) for p in probs], config


def classifier_findings(run_dir: Path) -> list[Finding]:
    from probes.task_metrics import probe_classifier

    y, p, config = test_predictions(run_dir)
    return probe_classifier(y, p, seed=int(config.get("seed") or 0), subject=str(run_dir))


def next_visit_findings(run_dir: Path) -> list[Finding]:
    """The saved next-visit model's ranked codes on the test split against the training next visits."""
    import torch

    from ehrdebug.codetok import SPECIAL_TOKENS, code_token
    from probes.task_metrics import probe_next_visit, ranked_from_scores

    config, task, model, tokenizer = rebuild(run_dir, weights=True)
    records = task.records(config, config["data"]["test_split"])
    ks = tuple(int(k) for k in config.get("recall_k") or (10, 20))
    with torch.no_grad():
        scores = task.outputs(model, task.features(records, tokenizer, config), config, torch.device("cpu"))
    vocab = tokenizer.convert_ids_to_tokens(list(range(scores.shape[1])))
    ranked = ranked_from_scores(scores, vocab, max(ks), exclude=SPECIAL_TOKENS)
    truth = [[code_token(c) for c in r["next_visit_codes"]] for r in records]
    train = [[code_token(c) for c in r["next_visit_codes"]] for r in task.records(config, "train")]
    return probe_next_visit(truth, ranked, train, ks=ks, seed=int(config.get("seed") or 0), subject=str(run_dir))


def kept_next_visit_findings(run_dir: Path) -> list[Finding]:
    """``metrics.next_visit`` on the test predictions the run kept (``artifacts/evidence/predictions-test``),
    the way the doctor reads them: each patient's ranked codes against the training next-visit counts."""
    from ehrdebug.runstore.evidence import load_predictions
    from probes.task_metrics import probe_next_visit

    kept = load_predictions(run_dir, "test")
    if kept is None or kept.kind != "next_visit":
        raise UserError(f"{run_dir} kept no next-visit test predictions (artifacts/evidence/predictions-test.jsonl)")
    counts = {str(k): int(v) for k, v in (kept.meta.get("train_counts") or {}).items()}
    return probe_next_visit([r.get("truth") or [] for r in kept.rows], [r.get("ranked") or [] for r in kept.rows], counts,
                            ks=tuple(int(k) for k in kept.meta.get("ks") or (10, 20)),
                            seed=int(run_config(run_dir).get("seed") or 0), subject=str(run_dir))
