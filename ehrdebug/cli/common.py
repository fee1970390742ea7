"""Shared CLI plumbing: output format/fail-on options and report emission."""

from __future__ import annotations

import os

import typer

from ehrdebug.errors import UserError
from ehrdebug.findings import Report, Severity

FORMAT_HELP = "Output format: text, json, junit, github or markdown."
FAIL_ON_HELP = "Exit 1 when any finding reaches this severity: warn or fail."


def parse_fail_on(value: str) -> Severity:
    try:
        sev = Severity.parse(value)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if sev < Severity.WARN:
        raise UserError(f"--fail-on must be warn or fail, not {value!r}")
    return sev


def emit_report(report: Report, fmt: str, fail_on: str, output: str | None = None) -> int:
    """Print (or write) the rendered report and return the exit code it implies."""
    from ehrdebug.report.render import FORMATS, render

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    threshold = parse_fail_on(fail_on)
    width = max(80, min(140, _terminal_width()))
    text = render(report, fmt, width=width)
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        typer.echo(text, nl=not text.endswith("\n"))
    return report.exit_code(threshold)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100
