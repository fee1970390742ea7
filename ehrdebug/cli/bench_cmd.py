"""``ehrdebug bench CONFIG [out=DIR] [key=value ...]``: train every model a benchmark config lists and tabulate them.

Writes ``DIR/bench.json``, ``DIR/report.md``, PNG plots and each model's run under ``DIR/runs/``
(``recipes.bench``). Overrides: ``out``, ``data.root``, ``label_field``, ``seed``, ``threads``,
``bootstrap``, ``device``, ``only=[a,b]``, ``<model>.<key>=value``. ``--dry-run``: check every model's config
and build each model without weights for its parameter count (``recipes.bench.dryrun``); nothing is trained.
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
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Check every model's config and build each model (no weights) for its parameter count; train nothing.",
    ),
) -> None:
    """Train and compare every model of a benchmark config on one dataset and split."""
    import json

    from recipes.bench.bench import run_bench
    from recipes.bench.report import table_lines

    if dry_run:
        _dry_run(config, list(overrides or []))
        return
    out = run_bench(config, list(overrides or []), progress=not quiet)
    data = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    typer.echo("\n".join(table_lines(data["rows"])))
    typer.echo(
        f"ehrdebug: benchmark written to {out} in {data['total_seconds']:.0f} s wall, "
        f"{data.get('total_cpu_seconds', 0):.0f} s CPU (report.md, bench.json, plots)",
        err=True,
    )


def _dry_run(config: str, overrides: list[str]) -> None:
    from ehrdebug.errors import UserError
    from recipes.bench.dryrun import dry_run_bench, dry_run_lines

    bench, rows = dry_run_bench(config, overrides)
    typer.echo("\n".join(dry_run_lines(rows)))
    bad = [r for r in rows if r["status"] == "invalid"]
    if bad:
        raise UserError(
            f"dry run: {len(bad)} of {len(rows)} models would fail; first: {bad[0]['model']}: {bad[0]['error']}"
        )
    typer.echo(
        f"ehrdebug: dry run of {bench['name']}: {len(rows)} models checked, nothing trained or written",
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
