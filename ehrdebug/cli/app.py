"""The ``ehrdebug`` command: groups are registered from their own modules, and only when they have commands.

Exit codes: 0 ok, 1 findings at or above ``--fail-on``, 2 a usage or input error (one line on stderr),
3 an internal error (a bug in ehrdebug: one line naming it; ``--debug`` shows the traceback).
Heavy libraries are never imported here: ``ehrdebug --help`` must stay instant.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from ehrdebug import __version__
from ehrdebug.errors import UserError

# (name, module, help). Each module exposes ``app: typer.Typer``; a group whose app has no commands
# yet is not listed, so ``--help`` only shows commands that work.
GROUPS: list[tuple[str, str, str]] = [
    ("data", "ehrdebug.cli.data_cmd", "Synthesize EHR data and build task datasets (seq2seq, codes, diagnosis, coding)."),
    ("check", "ehrdebug.cli.check", "Static checks for CI: tokenizer, data and collator probes."),
    ("doctor", "ehrdebug.cli.doctor_cmd", "Run every probe that applies to a run, HF output dir or checkpoint."),
    ("train", "ehrdebug.cli.train_cmd", "Train a recipe from a YAML config (key=value overrides)."),
    ("fix", "ehrdebug.cli.fix_cmd", "Apply fix-recipes to a copy of a run/checkpoint/config."),
    ("zoo", "ehrdebug.cli.zoo_cmd", "The bug zoo: small real runs that exhibit each known failure."),
    ("demo", "ehrdebug.cli.demo_cmd", "The seed-000 story end to end: break, diagnose, fix, retrain, compare."),
    ("tui", "ehrdebug.cli.tui_cmd", "Open the interactive terminal UI."),
    ("report", "ehrdebug.cli.report_cmd", "Render a saved report or a run summary in another format."),
    ("bench", "ehrdebug.cli.bench_cmd", "Train every model of a benchmark config and tabulate them (table, report, plots)."),
    ("compare", "ehrdebug.cli.compare_cmd", "Compare existing runs: the benchmark table and plots."),
    ("pack", "ehrdebug.cli.pack_cmd", "Pack a run or benchmark into one small archive (best weights, events, reports)."),
]

app = typer.Typer(
    name="ehrdebug",
    help="Diagnose, explain and fix failures when training sequence models on medical data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}
INTERNAL_ERROR = 3  # not 1 (findings) nor 2 (the user's input): a bug in ehrdebug itself


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ehrdebug {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _STATE["debug"] = debug


def _register() -> None:
    for name, module_name, help_text in GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # group not built yet
            raise
        group = getattr(module, "app", None)
        if group is None:
            continue
        if isinstance(group, typer.Typer):
            if not group.registered_commands and not group.registered_groups and group.registered_callback is None:
                continue
            single = getattr(module, "SINGLE_COMMAND", False)
            if single:
                # a group that is one command (``ehrdebug doctor PATH``) is mounted as that command
                cmd = group.registered_commands[0]
                app.command(name=name, help=help_text)(cmd.callback)
            else:
                app.add_typer(group, name=name, help=help_text)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one stderr line and exit 2, bugs one line and exit 3."""
    try:  # typer >= 0.20 vendors click as typer._click
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[no-redef]

    args = sys.argv[1:] if argv is None else argv
    _STATE["debug"] = False  # set by the root callback when ``ehrdebug --debug ...`` is parsed
    try:
        result = app(args=args, prog_name="ehrdebug", standalone_mode=False)
    except UserError as exc:
        if _STATE["debug"]:
            raise
        return _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        typer.echo("ehrdebug: aborted", err=True)
        return 130
    except NoArgsIsHelpError:
        return 0  # typer has already printed the help
    except ClickException as exc:  # a usage error: its traceback (click's parser) helps nobody, even with --debug
        return _fail(exc.format_message(), 2)
    except KeyboardInterrupt:
        typer.echo("ehrdebug: interrupted", err=True)
        return 130
    except (OSError, MemoryError) as exc:  # a path the user named that cannot be read or written, a full disk
        if _STATE["debug"]:
            raise
        return _fail(_os_message(exc), 2)
    except Exception as exc:  # a bug: say so in one line, never dress it up as the user's mistake
        if _STATE["debug"]:
            raise
        detail = " ".join(str(exc).split())[:300]
        return _fail(f"internal error: {type(exc).__name__}: {detail}{_origin(exc)}; this is a bug in ehrdebug,"
                     " run again as `ehrdebug --debug ...` for the traceback", INTERNAL_ERROR)
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    """Print ``message`` as exactly one line on stderr (embedded newlines folded) and return ``code``."""
    line = " ".join(message.split()) or "unknown error"
    typer.echo(f"ehrdebug: error: {line}", err=True)
    return code


def _os_message(exc: BaseException) -> str:
    """``/x/y: Permission denied`` rather than ``[Errno 13] Permission denied: '/x/y'``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        other = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        return f"{exc.filename}{other}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _origin(exc: BaseException) -> str:
    """`` (at module.py:123)``: the innermost frame of the traceback, so a one-line bug report is actionable."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f" (at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno})"


def run() -> None:
    sys.exit(main())
