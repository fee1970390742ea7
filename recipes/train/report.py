"""Shareable artifacts of a run: loss curves (PNG) and a metrics summary (JSON), for ephemeral pods."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_artifacts(run_dir: Path, history: dict[str, list[dict[str, Any]]], summary: dict[str, Any]) -> dict[str, Path]:
    """``artifacts/loss.png`` (train + eval loss; task metrics on the right) and ``metrics_summary.json``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = run_dir / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    train, evals = history.get("train", []), history.get("eval", [])
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if evals:
        ax_loss.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval loss")
        for key in sorted(k for k in evals[0] if k.startswith("eval_") and k != "eval_loss" and "codes_generated" not in k):
            ax_metric.plot([r["step"] for r in evals], [r.get(key) for r in evals], "o-", label=key[5:])
    if summary.get("best_step") is not None:
        ax_loss.axvline(summary["best_step"], color="grey", ls="--", lw=0.8, label="best")
    ax_loss.set(xlabel="optimizer step", ylabel="loss", title=f"{summary.get('recipe', '')} ({summary.get('size', '')})")
    ax_loss.set_yscale("log")
    ax_metric.set(xlabel="optimizer step", ylim=(-0.02, 1.02), title="evaluation")
    for ax in (ax_loss, ax_metric):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    plt.close(fig)
    summary_path = out / "metrics_summary.json"
    summary_path.write_text(json.dumps({**summary, "history": history}, indent=2, default=str) + "\n", encoding="utf-8")
    return {"plot": out / "loss.png", "summary": summary_path}
