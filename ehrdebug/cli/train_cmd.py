"""``ehrdebug train CONFIG [key=value ...]``: train a recipe (recipes/configs/*.yaml) into a run directory.

Overrides use dotted keys for nested ones (``generation.temperature=1.3``); an unknown key is a
one-line error naming the closest key. The run directory (``out=``) is written throughout, so
``ehrdebug doctor``/``ehrdebug tui`` can attach while it trains; ``resume=true`` continues it.
"""

from __future__ import annotations

import typer

SINGLE_COMMAND = True
app = typer.Typer()


@app.command("train", context_settings={"allow_extra_args": False})
def train(
    config: str = typer.Argument(..., help="Recipe config, e.g. recipes/configs/bart_ehrgen_small.yaml."),
    overrides: list[str] | None = typer.Argument(None, help="key=value overrides: lr=1e-4 epochs=3 out=runs/x"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit without training."),
) -> None:
    """Train a recipe from a YAML config; prints the run directory when done."""
    from recipes.train.config import load_config

    resolved = load_config(config, list(overrides or []))
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), nl=False)
        return
    from recipes.train.loop import run_training

    run_dir = run_training(resolved)
    typer.echo(f"ehrdebug: run written to {run_dir}", err=True)
    typer.echo(str(run_dir))
