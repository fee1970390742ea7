"""``ehrdebug bench CONFIG [out=DIR] [key=value ...]``: train every model a benchmark config lists and tabulate them.

Writes ``DIR/bench.json``, ``DIR/report.md``, PNG plots and each model's run under ``DIR/runs/``
(``recipes.bench``). Overrides: ``out``, ``data.root``, ``label_field``, ``seed``, ``threads``,
``bootstrap``, ``device``, ``only=[a,b]``, ``<model>.<key>=value``.
"""

from __future__ import annotations

import typer

SINGLE_COMMAND = True
app = typer.Typer()


@app.command("bench")
def bench(
    config: str = typer.Argument(
        ..., help="Benchmark config, e.g. recipes/configs/bench_mortality_small.yaml."
    ),
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides: out=runs/bench data.root=DIR only=[xgboost,lstm]"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display (the table is still printed)."),
) -> None:
    """Train and compare every model of a benchmark config on one dataset and split."""
    import json

    from recipes.bench.bench import run_bench
    from recipes.bench.report import table_lines

    out = run_bench(config, list(overrides or []), progress=not quiet)
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    typer.echo("\n".join(table_lines(data["rows"])))
    typer.echo(
        f"ehrdebug: benchmark written to {out} in {data['total_seconds']:.0f} s (report.md, bench.json, plots)",
        err=True,
    )


def train_baseline_command(config: str, overrides: list[str], dry_run: bool) -> bool:
    """``ehrdebug train`` on a baseline config (``recipes.baselines.registry``); False when it is not one."""
    from recipes.baselines.registry import train_config_file

    done = train_config_file(config, overrides, dry_run)
    if done is None:
        return False
    resolved, run_dir = done
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), nl=False)
    else:
        typer.echo(f"ehrdebug: run written to {run_dir}", err=True)
        typer.echo(str(run_dir))
    return True
