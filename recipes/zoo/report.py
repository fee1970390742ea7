"""Before/after figures and the markdown summary of ``ehrdebug demo``.

Kept apart from the story (``recipes/demo.py``) so the zoo can reuse the loss plot
and the comparison table on any two runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROWS: list[tuple[str, str, str]] = [
    # (metric key, label, format)
    ("structurally_valid", "structurally valid sequences", "pct"),
    ("valid_code_rate", "generated codes that are real ICD-9 codes of the data", "pct"),
    ("p_visit_after_demo", "P(<v> | … <demo>)", "prob"),
    ("p_pretrained_eos_after_demo", "P(pretrained EOS | … <demo>)", "prob"),
    ("eval_loss", "validation loss (best)", "num"),
    ("train_loss", "training loss (last)", "num"),
    ("steps", "optimizer steps", "int"),
    ("seconds", "training time (s)", "num"),
    ("accuracy", "diagnosis accuracy (held-out)", "pct"),
]


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if kind == "pct":
        return f"{100 * number:.1f}%"
    if kind == "prob":
        return f"{number:.4f}" if number >= 1e-4 else f"{number:.2e}"
    if kind == "int":
        return str(int(number))
    return f"{number:.4g}"


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for key, label, kind in ROWS:
        if key in before or key in after:
            rows.append((label, fmt(before.get(key), kind), fmt(after.get(key), kind)))
    return rows


def plot_losses(runs: dict[str, Path], png: Path) -> Path | None:
    """Training and validation loss of each run on one log-scale chart (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ehrdebug.runstore import open_run

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    drew = False
    for (label, path), colour in zip(runs.items(), ("tab:red", "tab:green", "tab:blue", "tab:orange"), strict=False):
        history = open_run(str(path)).history().normalized()
        if len(history.train):
            ax.plot(history.train.steps, history.train.values, color=colour, alpha=0.55, label=f"{label}: train")
            drew = True
        for key, series in history.evals.items():
            if len(series):
                ax.plot(series.steps, series.values, color=colour, marker="o", linestyle="--", label=f"{label}: {key}")
                drew = True
    if not drew:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("loss before and after the fixes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def markdown(
    title: str,
    before: dict[str, Any],
    after: dict[str, Any],
    findings_before: list[dict[str, Any]],
    findings_after: list[dict[str, Any]],
    fixes: list[dict[str, Any]],
    advice: list[tuple[str, str]],
    samples: dict[str, list[str]],
    plots: list[str],
    acceptance: dict[str, bool],
    extra_sections: list[str] | None = None,
) -> str:
    lines = [f"# {title}", ""]
    lines += ["| | before | after |", "|---|---|---|"]
    bar = "\\|"  # a literal | inside a table cell
    lines += [f"| {label.replace('|', bar)} | {b} | {a} |" for label, b, a in comparison_rows(before, after)]
    lines += ["", "## Acceptance", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in acceptance.items()]
    lines += ["", "## What the doctor found before the fixes", ""]
    lines += [_finding_line(f) for f in findings_before] or ["- nothing above info"]
    lines += ["", "## Fixes applied (ehrdebug fix --auto)", ""]
    for rec in fixes:
        lines.append(f"- **{rec['id']}**")
        lines += [f"  - `{c['key']}`: {c['before']!r} → {c['after']!r}" for c in rec.get("changes", [])]
    if advice:
        lines += ["", "Advice (not applied automatically):", ""]
        lines += [f"- {rid}: {text}" for rid, text in advice]
    lines += ["", "## What the doctor finds after the fixes", ""]
    lines += [_finding_line(f) for f in findings_after] or ["- nothing above info"]
    for label, texts in samples.items():
        lines += ["", f"## Generated samples ({label})", "", "```"]
        lines += texts[:5]
        lines += ["```"]
    for plot in plots:
        lines += ["", f"![loss curves]({plot})"]
    for section in extra_sections or []:
        lines += ["", section]
    return "\n".join(lines) + "\n"


def _finding_line(finding: dict[str, Any]) -> str:
    recipes = f" → {', '.join(finding.get('recipes', []))}" if finding.get("recipes") else ""
    return f"- [{finding['severity']}] `{finding['probe']}`: {finding['title']}{recipes}"
