"""``ehrdebug check``: static probes for CI. One submodule per subcommand registers on ``app``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True)

for _sub in ("tokenizer", "data", "collator"):
    try:
        importlib.import_module(f"ehrdebug.cli.check.{_sub}")
    except ModuleNotFoundError as exc:  # subcommand not built yet
        if exc.name != f"ehrdebug.cli.check.{_sub}":
            raise
