"""``ehrdebug tui [PATH]``: open the interactive terminal UI on a folder of runs or one run."""

from __future__ import annotations

import typer

app = typer.Typer()
SINGLE_COMMAND = True


@app.command()
def tui(
    path: str = typer.Argument(
        ".", help="A folder of runs (ehrdebug runs, HF Trainer output dirs) or one run."
    ),
    interval: float = typer.Option(
        1.0, "--interval", help="Seconds between reads of a live run's event log."
    ),
) -> None:
    """Open the interactive terminal UI."""
    import os

    from ehrdebug.errors import UserError

    if not os.path.exists(path):
        raise UserError(f"path not found: {path}")
    if not os.path.isdir(path):
        raise UserError(f"expected a folder of runs or a run directory, got a file: {path}")
    from ehrdebug.cli.common import require_number

    require_number(interval, "--interval", above=0)
    _check_run(path)
    from ehrdebug.tui.app import EhrDebugApp

    EhrDebugApp(path, follow_interval=interval).run()


def _check_run(path: str) -> None:
    """One run whose run.json / trainer_state.json / events.jsonl is broken: one line and exit 2 here,
    not a traceback from inside the running app (a folder of runs is left to the runs screen)."""
    from pathlib import Path

    from ehrdebug.runstore.reader import check_run, is_run_dir, open_run

    if is_run_dir(Path(path)):
        check_run(open_run(path))
