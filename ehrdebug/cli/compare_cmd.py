"""``ehrdebug compare RUN RUN ... [--out DIR]``: the benchmark's table (and plots) from existing runs.

A RUN may also be a benchmark folder (its ``runs/*``). ``recipes.bench.compare.compare_runs`` does the
work; the TUI's Compare screen can call it too.
"""

from __future__ import annotations

import typer

SINGLE_COMMAND = True
app = typer.Typer()


@app.command("compare")
def compare(
    runs: list[str] = typer.Argument(..., help="Run directories (or benchmark folders) to compare."),
    out: str | None = typer.Option(
        None, "--out", help="Also write compare.json, report.md and plots to this new folder."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Compare runs: parameters, time, memory, test AUROC/AUPRC/F1 with intervals, p-values."""
    import json

    from recipes.bench.compare import compare_runs

    result = compare_runs(runs, out_dir=out)
    typer.echo(json.dumps(result.rows, indent=2, default=str) if as_json else result.markdown())
    if out:
        typer.echo(f"ehrdebug: comparison written to {out}", err=True)
