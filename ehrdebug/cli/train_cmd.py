"""``ehrdebug train CONFIG [key=value ...]``: train a recipe (recipes/configs/*.yaml) into a run directory.

Overrides use dotted keys for nested ones (``generation.temperature=1.3``); the config is validated
against the recipe's declared schema before anything runs (a bad value or an unknown key is one line,
exit 2). The run directory (``out=``) is written throughout, so ``ehrdebug doctor``/``ehrdebug tui`` can
attach while it trains; ``resume=true`` continues it. SIGTERM/SIGINT checkpoint at the next step and
exit 128 + the signal number. Several processes: ``accelerate launch -m ehrdebug train ...`` or torchrun.
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
    keys: bool = typer.Option(False, "--keys", help="List the recipe's config keys (default and meaning) and exit."),
) -> None:
    """Train a recipe from a YAML config; prints the run directory when done."""
    from ehrdebug.cli.bench_cmd import train_baseline_command
    from recipes.train.config import load_recipe_config, recipe_keys

    if keys and _baseline_keys(config):  # a baseline's keys: listed, never trained
        return
    if train_baseline_command(config, list(overrides or []), dry_run):  # logreg/xgboost/lstm/med2vec: their own registry
        return
    resolved = load_recipe_config(config, list(overrides or []))
    if keys:
        from recipes.train.schema import key_docs

        for name, default, doc in key_docs(recipe_keys(resolved["recipe"])):
            typer.echo(f"{name:32} {default:24} {doc}")
        return
    if dry_run:
        import yaml

        typer.echo(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), nl=False)
        return
    from recipes.train.loop import run_training

    run_dir = run_training(resolved)
    typer.echo(f"ehrdebug: run written to {run_dir}", err=True)
    typer.echo(str(run_dir))


def _baseline_keys(config: str) -> bool:
    """``--keys`` on a baseline config (logreg, xgboost, lstm, med2vec): its declared keys; False for the others."""
    from recipes.baselines.config import SHARED
    from recipes.baselines.registry import baseline_name, get_baseline
    from recipes.train.schema import key_docs

    name = baseline_name(config)
    if name is None:
        return False
    for key, default, doc in key_docs({**SHARED, **get_baseline(name).KEYS}):
        typer.echo(f"{key:32} {default:24} {doc}")
    return True
