"""``ehrdebug demo [--out DIR] [--t5]``: seed 000 end to end — break, diagnose, fix, retrain, compare."""

from __future__ import annotations

import typer

app = typer.Typer()
SINGLE_COMMAND = True


@app.command()
def demo(
    out: str = typer.Option("ehrdebug-demo", "--out", "-o", help="New output directory for the runs and report.md."),
    t5: bool = typer.Option(False, "--t5", help="Also run seed 002's T5 diagnosis story (a few more minutes)."),
) -> int:
    """Train the broken BART run, diagnose it, apply the suggested fixes, retrain and report before/after."""
    from pathlib import Path

    from recipes.demo import run_demo
    from recipes.zoo.report import comparison_rows

    summary = run_demo(out, t5=t5, log=typer.echo)
    typer.echo("")
    typer.echo(f"{'':52} {'before':>10} {'after':>10}")
    for label, before, after in comparison_rows(summary["before"], summary["after"]):
        typer.echo(f"{label:52} {before:>10} {after:>10}")
    if "t5" in summary:
        t5s = summary["t5"]
        typer.echo(f"{'T5 diagnosis accuracy (held-out)':52} {t5s['before'].get('accuracy', 0):>10.1%} {t5s['after'].get('accuracy', 0):>10.1%}")
        typer.echo(f"{'  (always the most frequent diagnosis)':52} {t5s['majority_baseline']:>10.1%} {t5s['majority_baseline']:>10.1%}")
    for name, ok in summary["acceptance"].items():
        typer.echo(f"{'PASS' if ok else 'FAIL'}  {name}")
    typer.echo(f"report: {Path(out) / 'report.md'}  ({summary['seconds']} s)")
    return 0 if all(summary["acceptance"].values()) else 1
