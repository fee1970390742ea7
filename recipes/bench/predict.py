"""Test predictions of a training-loop run, recomputed from its best checkpoint for the paired bootstrap.

The benchmark compares models on the very same test labels, so it needs each run's per-record
probabilities. The baselines write ``artifacts/test_predictions.jsonl`` themselves; for a loop run that
did not, this loads the best checkpoint (``ehrdebug.models.load_pretrained``: merged weights for a
LoRA run) with its tokenizer and asks the run's task for the probabilities of the test records, at the
threshold the run chose on validation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.bench.runinfo import PREDICTIONS, read_run


def loop_test_predictions(run_dir: Path, config: dict[str, Any]) -> Path | None:
    """Write ``artifacts/test_predictions.jsonl`` for a binary-task loop run; None when it does not apply."""
    import numpy as np

    from recipes.baselines.tasks import write_predictions
    from recipes.train.task import get_task

    target = run_dir / "artifacts" / PREDICTIONS
    if target.is_file():
        return target
    record = read_run(run_dir)
    test = record.test
    task = get_task(config["recipe"])
    probabilities = getattr(task, "probabilities", None)
    if "test_auroc" not in test or probabilities is None:
        return None  # not a binary task (MLM pretraining, next visit)
    checkpoint = record.best_checkpoint()
    if checkpoint is None:
        return None
    import torch
    from transformers import AutoTokenizer

    import ehrdebug.models as models

    model = models.load_pretrained(str(checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    records = task.records(config, config["data"]["test_split"])
    with torch.no_grad():
        p = np.asarray(probabilities(model, tokenizer, records, config, torch.device("cpu")), dtype=float)
    y = np.asarray([int(r[config["label_field"]]) for r in records])
    return write_predictions(run_dir, records, y, p, float(test.get("test_threshold", 0.5)))
