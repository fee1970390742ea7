"""``ehrdebug zoo list`` and ``ehrdebug zoo run NAME [--out DIR] [--fix]``: the bug zoo.

Each case trains a small real run that exhibits one failure of the field reports, runs the doctor on
it and shows whether the intended probe fired; ``--fix`` then applies the case's fix-recipe to a copy
of the run's config, retrains and shows that the probe no longer fires.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_cases() -> None:
    """List the zoo's cases: the failure, the probe that must fire and the fix that answers it."""
    from recipes.zoo import CASES

    for case in CASES.values():
        typer.echo(f"{case.name}  (seed {case.seed})")
        typer.echo(f"    failure: {case.failure}")
        typer.echo(f"    how:     {case.how}")
        typer.echo(f"    probe:   {case.probe}    fix: {case.fix}")


@app.command("run")
def run_case(
    name: str = typer.Argument(..., help="A case name from 'ehrdebug zoo list'."),
    out: str = typer.Option(None, "--out", "-o", help="New output directory (default: zoo-runs/NAME)."),
    fix: bool = typer.Option(False, "--fix", help="Also apply the case's fix-recipe, retrain and diagnose again."),
) -> int:
    """Train the case's broken run, diagnose it (and with --fix, repair and retrain it)."""
    from ehrdebug.errors import UserError
    from recipes.zoo import get_case
    from recipes.zoo.runner import fix_and_rerun
    from recipes.zoo.runner import run_case as run

    case = get_case(name)
    out_dir = Path(out) if out else Path("zoo-runs") / case.name
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"output directory {out_dir} already exists and is not empty; choose a new --out")
    typer.echo(f"zoo {case.name}: {case.how}")
    broken = run(case, out_dir)
    _show("broken", broken)
    ok = bool(broken.fired()) or case.name == "healthy"
    if case.name == "healthy":
        ok = not broken.above_info()
    if fix and case.name != "healthy":
        fixed = fix_and_rerun(broken, out_dir)
        _show(f"after {case.fix}", fixed)
        ok = ok and not fixed.fired()
    typer.echo(f"results under {out_dir}")
    return 0 if ok else 1


def _show(label: str, run) -> None:  # noqa: ANN001 - CaseRun, imported lazily
    case = run.case
    fired = run.fired()
    extra = f" (training crashed: {run.crashed})" if run.crashed else ""
    typer.echo(f"[{label}] {run.run_dir}  {run.seconds:.0f}s{extra}")
    if case.name == "healthy":
        worst = run.above_info()
        typer.echo(f"  findings above info: {len(worst)}")
        for f in worst:
            typer.echo(f"    [{f.severity.label}] {f.probe}: {f.title}")
        return
    if fired:
        for f in fired:
            typer.echo(f"  {case.probe} FIRES [{f.severity.label}]: {f.title}")
            if f.recipes:
                typer.echo(f"    recipes: {', '.join(f.recipes)}")
    else:
        typer.echo(f"  {case.probe} does not fire")
