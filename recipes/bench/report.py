"""A benchmark's outputs from its rows: ``bench.json``, ``report.md`` and the PNG plots beside them.

``bench`` and ``compare`` both end here, so a table built from existing runs reads like a fresh one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recipes.bench.table import METRICS


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "—"


def _checkpoint(row: dict[str, Any]) -> str:
    """The best checkpoint's weights; a LoRA run's adapter-only size beside them (what ``pack`` keeps)."""
    size = _size(row.get("checkpoint_bytes"))
    return f"{size} (adapter {_size(row['adapter_bytes'])})" if row.get("adapter_bytes") else size


def _count(n: Any) -> str:
    return f"{int(n):,}" if isinstance(n, (int, float)) else "—"


def _p(value: Any, n: Any) -> str:
    """A bootstrap p-value of 0 means "below the resolution 1/n", not zero."""
    if not isinstance(value, (int, float)):
        return "—"
    if value == 0 and isinstance(n, int) and n:
        return f"<{1 / n:.3f}"
    return f"{value:.3f}"


def _with_ci(row: dict[str, Any], name: str) -> str:
    ci = row.get(f"{name}_ci") or {}
    value = _num(row.get(name))
    if ci.get("low") is None:
        return value
    return f"{value} [{ci['low']:.3f}, {ci['high']:.3f}]"


HEAD = ("model", "tier", "params", "trainable", "train s", "CPU s", "s/epoch", "peak MB", "checkpoint",
        "AUROC [95% CI]", "AUPRC [95% CI]", "F1 [95% CI]", "p vs best baseline")  # fmt: skip


def table_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The table's cells (columns of ``HEAD``) for every scored row: what ``report.md``, ``ehrdebug compare``
    and the TUI's Compare screen show, formatted once."""
    body = []
    for row in rows:
        if not row.get("scored", True):
            continue
        if row.get("status") in ("failed", "skipped"):
            body.append([row["model"], *(["—"] * (len(HEAD) - 2)), str(row["status"])])
            continue
        p = "reference" if row.get("best_baseline") else _p(row.get("p_value"), row.get("p_value_n"))
        name = f"{row['model']} (baseline)" if row.get("baseline") else row["model"]
        body.append([
            name, str(row.get("tier") or "—"), _count(row.get("parameters")), _count(row.get("trainable_parameters")),
            _num(row.get("train_seconds"), 1), _num(row.get("cpu_seconds"), 1), _num(row.get("seconds_per_epoch"), 2),
            _num(row.get("peak_memory_mb"), 0), _checkpoint(row), *(_with_ci(row, m) for m in METRICS), p,
        ])  # fmt: skip
    return body


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in table_cells(rows)]


def write_outputs(
    out_dir: Path, rows: list[dict[str, Any]], meta: dict[str, Any], title: str, json_name: str = "bench.json"
) -> dict[str, Path]:
    """``out_dir/<json_name>`` (meta + rows), ``report.md`` and plots: roc_pr.png, metric_vs_cost.png, loss_curves.png."""
    from recipes.bench import plots
    from recipes.bench.runinfo import read_run
    from recipes.bench.table import curves_of

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"json": out_dir / json_name, "report": out_dir / "report.md"}
    written["json"].write_text(
        json.dumps({**meta, "rows": rows}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    curves = curves_of(rows)
    if curves:
        written["roc_pr"] = plots.roc_pr(curves, out_dir / "roc_pr.png", title="(test)")
    scored = [r for r in rows if r.get("scored", True) and r.get("test_auroc") is not None]
    if scored:
        written["metric_vs_cost"] = plots.metric_vs(scored, out_dir / "metric_vs_cost.png")
    runs = [(r["model"], read_run(r["run_dir"])) for r in rows if r.get("run_dir")]
    if runs:
        written["loss_curves"] = plots.loss_curves(runs, out_dir / "loss_curves.png")
    lines = [f"# {title}", ""]
    for key in (
        "data",
        "test_records",
        "test_positives",
        "total_seconds",
        "total_cpu_seconds",
        "cpu_threads",
        "device",
        "created",
    ):
        if meta.get(key) is not None:
            lines.append(f"- **{key.replace('_', ' ')}**: {meta[key]}")
    lines += ["", *table_lines(rows), ""]
    lines.append("Intervals: percentile bootstrap over test records (same resamples for every model). p: two-sided paired "
                 "bootstrap of the difference in the benchmark metric (test AUROC by default) against the best baseline on the same test subjects "
                 "(`ehrdebug.metrics.paired_bootstrap`). F1 at the threshold each model chose on validation. Peak MB: "
                 "`torch.cuda.max_memory_allocated` on a GPU, else the process's peak RSS while the model trained. Train s: the "
                 "recipe's own training time; CPU s: the process's CPU time while the model trained, evaluation and test "
                 "included (it barely moves when other work shares the cores; wall time does).")  # fmt: skip
    other = [r for r in rows if not r.get("scored", True)]
    if other:
        lines += ["", "Trained but not scored (pretraining steps): " + ", ".join(
            f"{r['model']} ({r.get('status')}, {_num(r.get('train_seconds'), 1)} s)" for r in other)]  # fmt: skip
    failed = [r for r in rows if r.get("status") in ("failed", "skipped")]
    if failed:
        lines += ["", "## Models that did not finish", ""]
        lines += [f"- **{r['model']}** ({r['status']}): {r.get('error') or ''}" for r in failed]
    notes = [r for r in rows if r.get("note") or r.get("p_value_note")]
    lines += [f"- {r['model']}: {r.get('note') or r.get('p_value_note')}" for r in notes]
    lines += ["", "## Plots", ""]
    for key, caption in (("roc_pr", "ROC and precision-recall curves on the test split"),
                         ("metric_vs_cost", "test AUROC vs parameters and vs training time"),
                         ("loss_curves", "loss curves of every run")):  # fmt: skip
        if key in written:
            lines.append(f"![{caption}]({written[key].name})\n")
    lines += ["## Runs", ""] + [f"- {r['model']}: `{r['run_dir']}`" for r in rows if r.get("run_dir")]
    written["report"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written
