"""Shared CLI plumbing: output format/fail-on options and report emission."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from ehrdebug.errors import UserError
from ehrdebug.findings import Report, Severity

FORMAT_HELP = "Output format: text, json, junit, github or markdown."
FAIL_ON_HELP = "Exit 1 when any finding reaches this severity: warn or fail."


def require_number(value: float | None, flag: str, *, low: float | None = None, high: float | None = None,
                   above: float | None = None) -> None:
    """A one-line UserError for a numeric option that is NaN/inf or out of range (``above``: strictly greater).

    Typer turns ``nan`` and ``inf`` into floats and ``99999999999999999999`` into an int; either would only
    fail deep inside a probe or a generator (exit 3), so every command checks its numbers here first."""
    import math

    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{flag} must be a finite number, not {value}")
    if low is not None and value < low:
        raise UserError(f"{flag} must be at least {_num(low)}, not {_num(value)}")
    if above is not None and value <= above:
        bound = "positive" if above == 0 else f"greater than {_num(above)}"
        raise UserError(f"{flag} must be {bound}, not {_num(value)}")
    if high is not None and value > high:
        raise UserError(f"{flag} must be at most {_num(high)}, not {_num(value)}")


def _num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers' warnings while loading a user's file: a corrupt tokenizer must end in ehrdebug's
    one line, not in a library's fallback chatter printed before it."""
    import logging

    saved_env = os.environ.get("TRANSFORMERS_VERBOSITY")
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"  # read when transformers is first imported inside
    logger = logging.getLogger("transformers")
    saved_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        if saved_env is None:
            os.environ.pop("TRANSFORMERS_VERBOSITY", None)
        else:
            os.environ["TRANSFORMERS_VERBOSITY"] = saved_env


def parse_fail_on(value: str) -> Severity:
    try:
        sev = Severity.parse(value)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if sev < Severity.WARN:
        raise UserError(f"--fail-on must be warn or fail, not {value!r}")
    return sev


def check_report_options(fmt: str, fail_on: str, output: str | None = None,
                         inputs: tuple[str | None, ...] = ()) -> Severity:
    """Validate ``--format``, ``--fail-on`` and ``--output`` up front (before minutes of probing, not after)."""
    from ehrdebug.report.render import FORMATS

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    threshold = parse_fail_on(fail_on)
    check_output(output, inputs)
    return threshold


def emit_report(report: Report, fmt: str, fail_on: str, output: str | None = None, *,
                inputs: tuple[str | None, ...] = ()) -> int:
    """Print (or write) the rendered report and return the exit code it implies.

    ``inputs`` are the files and folders the command read: ``--output`` may not overwrite one of them
    or a file inside one (a typo must not replace the training data or a run's log with a report)."""
    from ehrdebug.report.render import render

    threshold = check_report_options(fmt, fail_on)
    width = max(80, min(140, _terminal_width()))
    text = render(report, fmt, width=width)
    if output:
        check_output(output, inputs)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except (FileExistsError, NotADirectoryError) as exc:  # makedirs/open through a path part that is a file
            raise UserError(f"cannot write --output {output}: a folder in its path is a file") from exc
        except OSError as exc:
            raise UserError(f"cannot write --output {output}: {exc.strerror or exc}") from exc
    else:
        typer.echo(text, nl=not text.endswith("\n"))
    return report.exit_code(threshold)


def check_output(output: str | None, inputs: tuple[str | None, ...] = ()) -> None:
    """A UserError when ``--output`` names a directory, or an existing file that is (or is inside) one of
    the command's ``inputs`` (checked before a long probe run, and again on write)."""
    if not output:
        return
    if os.path.isdir(output):
        raise UserError(f"--output {output} is a directory; name a file to write the report to")
    if not os.path.exists(output):
        check_writable(output)
        return
    target = os.path.realpath(output)
    for given in inputs:
        if not given or not os.path.exists(given):
            continue
        source = os.path.realpath(given)
        inside = os.path.isdir(source) and os.path.commonpath([target, source]) == source
        same = target == source or (os.path.isfile(source) and os.path.samefile(target, source))  # a hard link too
        if same or (inside and _is_run_or_data_file(target)):
            raise UserError(f"--output {output} would overwrite the input {given}; write the report elsewhere")
    check_writable(output)


def check_writable(output: str) -> None:
    """A UserError now, before anything is probed or saved, when ``output`` cannot be written (a folder in
    its path is a file, a read-only place): a command must not first change other files and then fail.

    The file is opened for appending, which changes nothing in an existing one; a new one is removed again.
    """
    path = os.path.abspath(output)
    parent = os.path.dirname(path)
    existed = os.path.exists(path)
    try:
        os.makedirs(parent, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write --output {output}: a folder in its path is a file") from None
    except OSError as exc:
        raise UserError(f"cannot write --output {output}: {exc.strerror or exc}") from None
    if not existed:
        try:
            os.remove(path)
        except OSError:
            pass


# files inside a diagnosed folder that a report must never replace (a report of the last run may be)
_RUN_FILES = {"events.jsonl", "run.json", "trainer_state.json", "config.json", "adapter_config.json",
              "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "vocab.json", "vocab.txt", "merges.txt", "training_args.json"}
_DATA_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet", ".gz", ".safetensors", ".bin", ".pt", ".model", ".yaml")


def _is_run_or_data_file(path: str) -> bool:
    name = os.path.basename(path)
    return name in _RUN_FILES or name.lower().endswith(_DATA_SUFFIXES)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100
