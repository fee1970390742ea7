"""``ehrdebug fix PATH --recipe NAME … | --auto [--out DIR]`` and ``ehrdebug fix --list``.

PATH is a training config (.yaml), a run directory or a checkpoint. The fixed copy goes to a new
directory (``--out``, default ``PATH-fixed``): a config for ``ehrdebug train`` and/or a repaired
checkpoint. ``--auto`` runs the doctor and applies the fixes its warn/fail findings name; advice ids
are printed with their text and never applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer()
SINGLE_COMMAND = True


def _list() -> None:
    from ehrdebug.recipe_ids import ADVICE
    from recipes.fixes import REGISTRY

    typer.echo("fix-recipes (applied by ehrdebug fix):")
    for fix in REGISTRY.values():
        typer.echo(f"  {fix.id:34} {fix.summary}")
        typer.echo(f"  {'':34} answers: {', '.join(fix.answers)}; applies to: {', '.join(fix.applies_to)}")
    typer.echo("advice (explained, never applied automatically):")
    for rid, text in ADVICE.items():
        typer.echo(f"  {rid:34} {text}")


@app.command()
def fix(
    path: str = typer.Argument(None, help="A training config (.yaml), a run directory or a model checkpoint."),
    recipe: list[str] = typer.Option(None, "--recipe", "-r", help="A fix-recipe id (repeatable); see --list."),
    auto: bool = typer.Option(False, "--auto", help="Apply the fixes the doctor's findings name."),
    out: str = typer.Option(None, "--out", "-o", help="New output directory (default: PATH-fixed)."),
    data: str = typer.Option(None, "--data", help="Data file for the doctor (--auto)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
    list_: bool = typer.Option(False, "--list", help="List the fix-recipes and advice ids."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                      help="Let the doctor (--auto) load pickle-only weights; trusted files only."),
) -> int:
    """Apply fix-recipes to a copy of a run, checkpoint or config (never over the original)."""
    from ehrdebug.errors import UserError

    if list_:
        _list()
        return 0
    if not path:
        raise UserError("give a PATH (config, run or checkpoint), or --list")
    if not recipe and not auto:
        raise UserError("choose fixes with --recipe NAME (repeatable) or --auto; see ehrdebug fix --list")
    from recipes.fixes import apply_fixes, auto_plan, get, resolve_target

    target = resolve_target(path)
    _check_config(target)
    ids = list(recipe or [])
    if auto:
        plan = auto_plan(path, data=data, allow_pickle=allow_pickle)
        typer.echo(f"doctor: {len(plan.report.findings)} findings, worst {plan.report.worst.label}")
        for rid in plan.fix_ids:
            typer.echo(f"  fix    {rid:32} <- {'; '.join(plan.reasons.get(rid, []))[:120]}")
        for rid, text in plan.advice:
            typer.echo(f"  advice {rid:32} {text}")
        ids += [rid for rid in plan.fix_ids if rid not in ids]
        if not ids:
            typer.echo("nothing to fix automatically")
            return 0
    fixes = [get(rid) for rid in ids]
    fixes = _check_fixed_config(target, fixes, skip_invalid=auto)
    if dry_run:
        for f in fixes:
            typer.echo(f"{f.id}:")
            try:
                lines = f.preview(target)
            except UserError as exc:
                lines = [f"skipped: {exc}"]
            for line in lines:
                typer.echo(f"  {line}")
        return 0
    from recipes.fixes.base import default_out_dir

    out_dir = Path(out) if out else default_out_dir(Path(path))
    result = apply_fixes(target, ids, out_dir, skip_inapplicable=auto)
    for line in result.lines():
        typer.echo(line)
    typer.echo(f"wrote {result.out_dir}")
    if result.config_path:
        typer.echo(f"next: ehrdebug train {result.config_path}")
    if result.checkpoint:
        typer.echo(f"fixed checkpoint: {result.checkpoint}")
    return 0


def _check_config(target: Any) -> None:
    """A config given to ``fix`` is validated as ``ehrdebug train`` would (unknown keys, bad values), before
    anything is planned or written: fixing a config that cannot train would only hide its problem."""
    from recipes.fixes.base import CONFIG

    if target.kind != CONFIG:
        return
    from recipes.baselines.registry import train_config_file
    from recipes.train.config import load_recipe_config

    if train_config_file(str(target.config_path), [], dry_run=True) is None:  # a baseline: its own schema
        load_recipe_config(target.config_path, check_device=False)


def _check_fixed_config(target: Any, fixes: list[Any], skip_invalid: bool) -> list[Any]:
    """The fixes whose edited config still validates; one that would write a config ``ehrdebug train`` refuses
    is a one-line error (or, under ``--auto``, left out with the reason), before anything is written."""
    import copy

    from ehrdebug.errors import UserError
    from recipes.fixes.base import CONFIG
    from recipes.train.task import task_names

    if target.kind != CONFIG or str(target.config.get("recipe", "bart_ehrgen")) not in task_names():
        return fixes
    from recipes.train.config import check_mapping

    cfg, kept = copy.deepcopy(target.config), []
    for fix in fixes:
        if fix.on_config is None:
            kept.append(fix)
            continue
        trial = copy.deepcopy(cfg)
        try:
            fix.on_config(trial, target)
        except UserError:  # not for this config: apply_fixes says so (or skips it under --auto)
            kept.append(fix)
            continue
        try:
            check_mapping(trial, "the fixed config")
        except UserError as exc:
            if not skip_invalid:
                raise UserError(f"fix {fix.id} does not apply to {target.config_path}: {exc}") from None
            typer.echo(f"  skip   {fix.id:32} {exc}")
            continue
        cfg = trial
        kept.append(fix)
    return kept
