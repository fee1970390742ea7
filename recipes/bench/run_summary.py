"""``artifacts/summary.md``: a run's markdown summary with its plots, readable when copied off a pod alone.

Every recipe calls ``write_run_summary(run_dir)`` at the end (the training loop, the baselines and the
benchmark do); it reads only the run directory (run.json, events.jsonl, artifacts/metrics_summary.json,
test predictions), so it also works on a run written by another tool, or one that was interrupted (it says
so). Whatever the task: a binary risk model is shown with AUROC/AUPRC/F1 and intervals; a generation or
masked-code task says it has none and what it is scored by, each figure with one line on what it measures
(``recipes.bench.glossary``), and a few of its test samples. Plots are linked by relative path, beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.bench.glossary import BINARY, bare, meaning
from recipes.bench.runinfo import RunRecord, read_run

SUMMARY = "summary.md"
CAPTIONS = {  # plots a run may hold in artifacts/, by file name
    "loss.png": "Loss curves (train, validation; best step dashed) and the evaluation metrics",
    "loss_curves.png": "Loss curves (train, validation)",
    "roc_pr.png": "ROC and precision-recall on the test split",
}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _inline(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split()).replace("`", "'")
    return f"`{text if len(text) <= limit else text[: limit - 1] + '…'}`"


def write_run_summary(run_dir: str | Path) -> Path:
    """Write ``artifacts/summary.md`` (+ ``loss_curves.png`` when the run has no ``loss.png``, and
    ``roc_pr.png`` when it saved binary test predictions)."""
    record = read_run(run_dir)
    out = record.path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {record.name}", "", *_facts(record)]
    if record.status != "finished":
        lines += [
            "",
            f"> This run is **{record.status}**: the figures below are what it wrote before it stopped.",
        ]
    lines += _scores(record)
    lines += _samples(record.summary.get("test_samples") or [])
    lines += _baselines(record.summary.get("baselines") or {})
    best_eval = record.summary.get("best_eval") or {}
    if best_eval:
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in best_eval.items() if k not in ("phase", "step"))
        lines += ["", f"## Best evaluation (validation, step {best_eval.get('step', '?')})", "", shown]
    lines += _plots(record, out)
    lines += _files(record)
    path = out / SUMMARY
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _facts(record: RunRecord) -> list[str]:
    info, summary = record.info, record.summary
    best = record.best_checkpoint()
    facts = {
        "recipe": info.get("recipe") or summary.get("recipe") or info.get("architecture"),
        "architecture": info.get("architecture"), "size": info.get("size"), "task": record.task or None,
        "status": record.status, "steps": summary.get("steps"), "epochs": summary.get("epochs_done"),
        "train seconds": summary.get("train_seconds"), "best step": summary.get("best_step"),
        "best checkpoint": summary.get("best_checkpoint") or (str(best.relative_to(record.path)) if best else None),
        "device": info.get("device") or (info.get("environment") or {}).get("device"),
    }  # fmt: skip
    params = record.parameters()
    if params:
        facts["parameters"] = f"{params.get('total', 0):,} ({params.get('trainable', 0):,} trainable)"
    return [f"- **{k}**: {_fmt(v)}" for k, v in facts.items() if v not in (None, "")]


def _scores(record: RunRecord) -> list[str]:
    test, ci = record.test, record.summary.get("test_ci") or {}
    kind = f"this {record.task} run" if record.task else "this run"
    lines = ["", "## Test split", ""]
    if not test:
        why = (
            "it stopped before its final test"
            if record.status != "finished"
            else "final_test was off or the test split was empty"
        )
        return lines + [f"No test figures: {why}. The best evaluation below is on the validation split."]
    if any(k in test for k in BINARY):
        lines.append(f"{kind[0].upper()}{kind[1:]} predicts one probability per record: AUROC, AUPRC and F1 on the test "
                     "split, with percentile-bootstrap 95% intervals where computed.")  # fmt: skip
    else:
        names = ", ".join(bare(k) for k in test)
        lines.append(f"{kind[0].upper()}{kind[1:]} predicts no single probability per record, so it has no AUROC, AUPRC "
                     f"or F1; it is scored by {names}.")  # fmt: skip
    lines += ["", "| metric | value | 95% interval | what it measures |", "|---|---|---|---|"]
    for key, value in test.items():
        band = ci.get(key) or {}
        interval = f"{band['low']:.4f} – {band['high']:.4f}" if band.get("low") is not None else ""
        lines.append(f"| {key} | {_fmt(value)} | {interval} | {meaning(key)} |")
    return lines


def _samples(samples: list[dict[str, Any]], limit: int = 4) -> list[str]:
    if not samples:
        return []
    lines = ["", f"## Test samples ({min(limit, len(samples))} of {len(samples)} kept)", ""]
    for sample in samples[:limit]:
        lines.append(f"- input {_inline(sample.get('prompt', ''))}")
        lines.append(f"  - output {_inline(sample.get('output', ''))}")
        if sample.get("expected") is not None:
            lines.append(f"  - expected {_inline(sample['expected'])}")
        verdict = [f"{k}: {_fmt(sample[k])}" for k in ("valid", "correct") if k in sample]
        verdict += [f"reason: {_inline(sample['reason'])}"] if sample.get("reason") else []
        if verdict:
            lines.append(f"  - {'; '.join(verdict)}")
    return lines


def _baselines(baselines: dict[str, dict[str, Any]]) -> list[str]:
    if not baselines:
        return []
    lines = [
        "",
        "## Baselines on the same split",
        "",
        "| baseline | AUROC | AUPRC | F1 |",
        "|---|---|---|---|",
    ]
    for name, f in baselines.items():
        lines.append(
            f"| {name} | {_fmt(f.get('test_auroc'))} | {_fmt(f.get('test_auprc'))} | {_fmt(f.get('test_f1'))} |"
        )
    return lines


def _plots(record: RunRecord, out: Path) -> list[str]:
    """Draw what the run lacks, then link every PNG of ``artifacts/`` (only files that exist)."""
    from recipes.bench import plots

    has_curves = any(record.curve(k, key)[0] for k, key in (("train", "loss"), ("eval", "eval_loss")))
    if has_curves and not (out / "loss.png").is_file():
        plots.loss_curves([(record.name, record)], out / "loss_curves.png")
    rows = record.predictions()
    if rows and {"label", "probability"} <= set(rows[0]):
        curve = (record.name, [r["label"] for r in rows], [r["probability"] for r in rows])
        plots.roc_pr([curve], out / "roc_pr.png")
    order = list(CAPTIONS)
    pngs = sorted(
        out.glob("*.png"), key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name)
    )
    if not pngs:
        return ["", "## Plots", "", "No plots: the run logged no losses and saved no test predictions."]
    lines = ["", "## Plots"]
    for png in pngs:
        caption = CAPTIONS.get(png.name, png.stem.replace("_", " "))
        lines += ["", f"{caption}:", "", f"![{caption}]({png.name})"]
    return lines


def _files(record: RunRecord) -> list[str]:
    listed = [("run.json", "what was trained (config, environment)"), ("events.jsonl", "train/eval events, one JSON a line"),
              ("artifacts/metrics_summary.json", "every figure above, with the history"),
              ("artifacts/test_predictions.jsonl", "subject id, label, probability per test record")]  # fmt: skip
    lines = ["", "## Files (relative to the run folder)", ""]
    lines += [f"- `{name}`: {why}" for name, why in listed if (record.path / name).is_file()]
    best = record.best_checkpoint()
    if best is not None:
        lines.append(
            f"- `{best.relative_to(record.path)}/`: the best checkpoint (weights, config, tokenizer)"
        )
    return lines
