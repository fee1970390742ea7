"""The benchmark table: one row per model, from run directories only (so ``compare`` and ``bench`` agree).

Per row: model, tier, parameters (total and trainable), training seconds, seconds per epoch, peak
memory, checkpoint size, ``test_auroc``/``test_auprc``/``test_f1`` with percentile-bootstrap 95%
intervals recomputed here from the saved test predictions (same resamples and seed for every model),
and a paired bootstrap p-value (``ehrdebug.metrics.paired_bootstrap``) of the model's metric against
the best baseline's on the same test subjects and labels. A model that failed keeps its row with its
error; a run without predictions keeps its figures, without intervals or p-value (``note`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS = ("test_auroc", "test_auprc", "test_f1")


@dataclass
class Entry:
    """A model of the table: its run directory (None when it never started) and what happened."""

    model: str
    run_dir: Path | None
    status: str = "finished"  # finished | failed | skipped | incomplete | interrupted
    error: str | None = None
    baseline: bool | None = None  # None: what run.json says
    scored: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _metric_fns(threshold: float) -> dict[str, Any]:
    from ehrdebug.metrics import auprc, auroc, binary_metrics

    return {
        "test_auroc": auroc,
        "test_auprc": auprc,
        "test_f1": lambda y, p: binary_metrics(y, p, threshold=threshold)["f1"],
    }


def _aligned(rows: list[dict[str, Any]]) -> dict[Any, tuple[int, float]]:
    return {
        (r.get("subject_id"), r.get("prediction_time")): (int(r["label"]), float(r["probability"]))
        for r in rows
    }


def build_rows(
    entries: list[Entry], bootstrap: int = 200, seed: int = 0, metric: str = "test_auroc"
) -> list[dict[str, Any]]:
    """Rows of the table for ``entries`` (in order); p-values against the best baseline on ``metric``."""
    import numpy as np

    from ehrdebug.metrics import bootstrap_ci
    from recipes.bench.runinfo import checkpoint_bytes, read_run

    rows: list[dict[str, Any]] = []
    predictions: dict[str, dict[Any, tuple[int, float]]] = {}
    for entry in entries:
        row: dict[str, Any] = {
            "model": entry.model,
            "status": entry.status,
            "scored": entry.scored,
            **entry.extra,
        }
        if entry.error:
            row["error"] = entry.error
        if entry.run_dir is None or not (entry.run_dir / "run.json").is_file():
            row["baseline"] = bool(entry.baseline)
            rows.append(row)
            continue
        record = read_run(entry.run_dir)
        if entry.status == "finished" and record.status != "finished":
            row["status"] = record.status
        params = record.parameters()
        seconds, epochs = record.train_seconds(), record.epochs()
        best = record.best_checkpoint()
        adapter = best / "adapter" if best is not None and (best / "adapter").is_dir() else None
        row.update({
            "run_dir": str(entry.run_dir), "recipe": record.info.get("recipe") or record.summary.get("recipe"),
            "architecture": record.info.get("architecture"), "tier": record.info.get("size"), "task": record.task,
            "baseline": bool(record.info.get("baseline")) if entry.baseline is None else entry.baseline,
            "parameters": params.get("total"), "trainable_parameters": params.get("trainable"),
            "train_seconds": seconds, "seconds_per_epoch": round(seconds / epochs, 3) if seconds and epochs else None,
            "epochs": epochs, "peak_memory_mb": record.resources.get("peak_memory_mb"),
            "memory_source": record.resources.get("memory_source"), "wall_seconds": record.resources.get("wall_seconds"),
            "cpu_seconds": record.resources.get("cpu_seconds"),
            "checkpoint": str(best.relative_to(entry.run_dir)) if best is not None else None,
            "checkpoint_bytes": checkpoint_bytes(best), "adapter_bytes": checkpoint_bytes(adapter),
        })  # fmt: skip
        test = record.test
        for name in METRICS:
            row[name] = test.get(name)
        row["test_threshold"] = test.get("test_threshold")
        preds = record.predictions()
        if entry.scored and preds and row["test_auroc"] is not None:
            aligned = _aligned(preds)
            predictions[entry.model] = aligned
            y = np.asarray([v[0] for v in aligned.values()])
            p = np.asarray([v[1] for v in aligned.values()])
            for name, fn in _metric_fns(float(row["test_threshold"] or 0.5)).items():
                ci = bootstrap_ci(fn, y, p, n=bootstrap, seed=seed) if bootstrap else {}
                row[f"{name}_ci"] = {"low": ci.get("low"), "high": ci.get("high")}
        elif entry.scored and row["test_auroc"] is not None:
            row["note"] = "no artifacts/test_predictions.jsonl: no intervals, curves or p-value"
        rows.append(row)
    _p_values(rows, predictions, bootstrap, seed, metric)
    return rows


def _p_values(
    rows: list[dict[str, Any]],
    predictions: dict[str, dict[Any, tuple[int, float]]],
    n: int,
    seed: int,
    metric: str,
) -> None:
    import numpy as np

    from ehrdebug.metrics import paired_bootstrap

    bases = [
        r
        for r in rows
        if r.get("baseline") and r["model"] in predictions and isinstance(r.get(metric), (int, float))
    ]
    if not bases or not n:
        return
    best = max(bases, key=lambda r: r[metric])
    best["best_baseline"] = True
    reference = predictions[best["model"]]
    for row in rows:
        if row["model"] not in predictions or row is best:
            continue
        mine = predictions[row["model"]]
        keys = [k for k in mine if k in reference]
        if len(keys) != len(mine) or any(mine[k][0] != reference[k][0] for k in keys):
            row["p_value_note"] = "test subjects or labels differ from the best baseline's: no paired test"
            continue
        y = np.asarray([mine[k][0] for k in keys])
        a, b = np.asarray([mine[k][1] for k in keys]), np.asarray([reference[k][1] for k in keys])
        fn = _metric_fns(float(row.get("test_threshold") or 0.5))[metric]
        test = paired_bootstrap(fn, y, a, b, n=n, seed=seed)
        row["p_value"] = test.get("p_value")
        row["p_value_n"] = test.get("n_valid")
        row["delta_vs_best_baseline"] = test.get("delta")
        row["p_value_against"] = best["model"]


def curves_of(rows: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(model, labels, probabilities) of every scored row with saved predictions, for the ROC/PR plot."""
    from recipes.bench.runinfo import read_run

    out = []
    for row in rows:
        if row.get("run_dir") and row.get("scored") and row.get("test_auroc") is not None:
            preds = read_run(row["run_dir"]).predictions()
            if preds:
                out.append((row["model"], [r["label"] for r in preds], [r["probability"] for r in preds]))
    return out
