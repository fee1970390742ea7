"""``artifacts/summary.md``: a run's markdown summary with its plots, readable when copied off a pod alone.

Any recipe calls ``write_run_summary(run_dir)`` at the end (the baselines and the benchmark do); it reads
only the run directory (run.json, events.jsonl, artifacts/metrics_summary.json, test predictions), so it
also works on a run written by another tool, or one that was interrupted (it says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.bench.runinfo import read_run

SUMMARY = "summary.md"


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_run_summary(run_dir: str | Path) -> Path:
    """Write ``artifacts/summary.md`` (+ ``loss_curves.png`` and, for a binary task, ``roc_pr.png``)."""
    from recipes.bench import plots

    record = read_run(run_dir)
    out = record.path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    info, summary = record.info, record.summary
    lines = [f"# {record.name}", ""]
    facts = {
        "recipe": info.get("recipe") or summary.get("recipe") or info.get("architecture"),
        "architecture": info.get("architecture"), "size": info.get("size"), "task": record.task or None,
        "status": record.status, "steps": summary.get("steps"), "epochs": summary.get("epochs_done"),
        "train seconds": summary.get("train_seconds"), "best step": summary.get("best_step"),
        "best checkpoint": summary.get("best_checkpoint") or (str(record.best_checkpoint().relative_to(record.path))
                                                              if record.best_checkpoint() else None),
        "device": info.get("device") or (info.get("environment") or {}).get("device"),
    }  # fmt: skip
    params = record.parameters()
    if params:
        facts["parameters"] = f"{params.get('total', 0):,} ({params.get('trainable', 0):,} trainable)"
    lines += [f"- **{k}**: {_fmt(v)}" for k, v in facts.items() if v not in (None, "")]
    if record.status != "finished":
        lines += [
            "",
            f"> This run is **{record.status}**: figures below are what it wrote before it stopped.",
        ]
    test = record.test
    if test:
        ci = summary.get("test_ci") or {}
        lines += ["", "## Test split", "", "| metric | value | 95% interval |", "|---|---|---|"]
        for key, value in test.items():
            band = ci.get(key) or {}
            interval = f"{band['low']:.4f} – {band['high']:.4f}" if band.get("low") is not None else ""
            lines.append(f"| {key} | {_fmt(value)} | {interval} |")
    baselines = summary.get("baselines") or {}
    if baselines:
        lines += [
            "",
            "## Baselines on the same split",
            "",
            "| baseline | AUROC | AUPRC | F1 |",
            "|---|---|---|---|",
        ]
        for name, figures in baselines.items():
            lines.append(
                f"| {name} | {_fmt(figures.get('test_auroc'))} | {_fmt(figures.get('test_auprc'))} | {_fmt(figures.get('test_f1'))} |"
            )
    best_eval = summary.get("best_eval") or {}
    if best_eval:
        lines += [
            "",
            "## Best evaluation",
            "",
            ", ".join(f"{k}={_fmt(v)}" for k, v in best_eval.items() if k != "phase"),
        ]
    lines += ["", "## Plots", ""]
    named = [(record.name, record)]
    if any(record.curve(k, key)[0] for k, key in (("train", "loss"), ("eval", "eval_loss"))):
        plots.loss_curves(named, out / "loss_curves.png")
        lines.append("![loss curves](loss_curves.png)")
    rows = record.predictions()
    if rows and {"label", "probability"} <= set(rows[0]):
        plots.roc_pr(
            [(record.name, [r["label"] for r in rows], [r["probability"] for r in rows])], out / "roc_pr.png"
        )
        lines += ["", "![ROC and precision-recall on the test split](roc_pr.png)"]
    other = sorted(p.name for p in out.glob("*.png") if p.name not in ("loss_curves.png", "roc_pr.png"))
    lines += [f"\n![{name}]({name})" for name in other]
    lines += ["", "## Files", "", "- `run.json`: what was trained (config, environment)", "- `events.jsonl`: train/eval events",
              "- `artifacts/metrics_summary.json`: every figure above, with the history"]  # fmt: skip
    if rows:
        lines.append("- `artifacts/test_predictions.jsonl`: subject id, label, probability per test record")
    path = out / SUMMARY
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
