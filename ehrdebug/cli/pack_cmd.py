"""``ehrdebug pack RUN_OR_BENCH_DIR [--out FILE.tar.gz] [--include-optimizer]``: one small archive to take off a pod.

run.json, events, metrics summaries, reports and plots, and each run's best checkpoint (safetensors
weights, config, tokenizer; only the LoRA adapter when the run has one); no optimizer state unless
``--include-optimizer``. Never overwrites an archive. ``recipes.bench.pack`` does the work.
"""

from __future__ import annotations

import typer

SINGLE_COMMAND = True
app = typer.Typer()


@app.command("pack")
def pack(
    path: str = typer.Argument(..., help="A run directory or a benchmark folder."),
    out: str | None = typer.Option(None, "--out", help="Archive to write (default: <dir>.tar.gz beside it)."),
    include_optimizer: bool = typer.Option(
        False, "--include-optimizer", help="Also pack optimizer/scheduler state (to resume elsewhere)."
    ),
) -> None:
    """Pack a run or benchmark into one small .tar.gz."""
    from recipes.bench.pack import pack_path

    result = pack_path(path, out=out, include_optimizer=include_optimizer)
    for note in result.notes:
        typer.echo(f"ehrdebug: {note}", err=True)
    typer.echo(f"{result.archive} ({result.human_size}, {result.files} files from {result.runs} run(s))")
