"""PNG plots (matplotlib, Agg) for a benchmark, ``compare`` and a single run's summary.

Curves come from saved test predictions (scikit-learn's ``roc_curve``/``precision_recall_curve``), so a
plot and the table beside it always describe the same predictions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_pr(curves: list[tuple[str, Any, Any]], path: Path, title: str = "") -> Path:
    """ROC and precision-recall curves of every (name, labels, probabilities), overlaid; prevalence dashed."""
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = _plt()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.6))
    prevalence = None
    for name, y, p in curves:
        y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
        if y.size == 0 or y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, p)
        precision, recall, _ = precision_recall_curve(y, p)
        ax_roc.plot(fpr, tpr, lw=1.4, label=f"{name} ({roc_auc_score(y, p):.3f})")
        ax_pr.step(
            recall, precision, where="post", lw=1.4, label=f"{name} ({average_precision_score(y, p):.3f})"
        )
        prevalence = float(y.mean())
    ax_roc.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    if prevalence is not None:
        ax_pr.axhline(prevalence, color="grey", ls="--", lw=0.8, label=f"prevalence ({prevalence:.3f})")
    ax_roc.set(
        xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUROC) {title}".strip()
    )
    ax_pr.set(
        xlabel="recall", ylabel="precision", title=f"precision-recall (AUPRC) {title}".strip(), ylim=(0, 1.02)
    )
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right" if ax is ax_roc else "upper right")
    return _save(fig, path)


def metric_vs(rows: list[dict[str, Any]], path: Path, metric: str = "test_auroc") -> Path:
    """``metric`` (with its 95% interval) against parameters (log scale) and against training seconds."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in (
        (axes[0], "parameters", "parameters (log)"),
        (axes[1], "train_seconds", "training seconds (log)"),
    ):
        for row in rows:
            x, y = row.get(key), row.get(metric)
            if not isinstance(x, (int, float)) or not isinstance(y, (int, float)) or x <= 0:
                continue
            ci = row.get(f"{metric}_ci") or {}
            low, high = ci.get("low"), ci.get("high")
            err = (
                [[y - low], [high - y]]
                if isinstance(low, (int, float)) and isinstance(high, (int, float))
                else None
            )
            ax.errorbar([x], [y], yerr=err, fmt="o", capsize=3, label=row["model"])
            ax.annotate(row["model"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set(xlabel=label, ylabel=metric, title=f"{metric} vs {key}")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def loss_curves(runs: list[tuple[str, Any]], path: Path) -> Path:
    """One panel per run: training loss and evaluation loss against the step (from events.jsonl)."""
    plt = _plt()
    n = max(1, len(runs))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (name, record) in zip(axes.flat, runs, strict=False):
        for kind, key, style in (("train", "loss", "-"), ("eval", "eval_loss", "o-")):
            steps, values = record.curve(kind, key)
            if steps:
                ax.plot(steps, values, style if len(steps) > 2 else "o-", lw=1, ms=3, label=f"{kind} loss")
        best = record.summary.get("best_step")
        if isinstance(best, int):
            ax.axvline(best, color="grey", ls="--", lw=0.8, label="best")
        ax.set(title=name, xlabel="step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
