"""``ehrdebug report PATH``: render a saved report.json (or a run's latest doctor report) in another format.

A run without a doctor report but with findings recorded during training is rendered from those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ehrdebug.cli.common import FAIL_ON_HELP, FORMAT_HELP

if TYPE_CHECKING:
    from ehrdebug.findings import Report

SINGLE_COMMAND = True
MAX_REPORT_BYTES = 64 << 20  # a doctor report is kilobytes; a larger file is not one
app = typer.Typer()


@app.command("report")
def report(
    path: str = typer.Argument(..., help="A report.json, or a run / HF output dir / checkpoint that was doctored."),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    fail_on: str = typer.Option("fail", "--fail-on", help=FAIL_ON_HELP),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the rendered report to this file."),
) -> int:
    """Re-render a saved report (text, json, junit, github, markdown) without re-running any probe."""
    import os

    from ehrdebug.cli.common import check_report_options, emit_report
    from probes.doctor_reports import find_saved_report

    found = find_saved_report(path) if os.path.exists(path) else None
    inputs = (path, str(found) if found is not None else None)  # the report read is never the one written
    check_report_options(fmt, fail_on, output, inputs)
    code = emit_report(load_report(path), fmt, fail_on, output, inputs=inputs)
    raise typer.Exit(code)


def load_report(path: str) -> Report:
    """The saved report for ``path``; a one-line UserError when there is none."""
    import json
    import os

    from ehrdebug.errors import UserError
    from ehrdebug.findings import Report
    from probes.doctor_reports import find_saved_report

    if not os.path.exists(path):
        raise UserError(f"path not found: {path}")
    found = find_saved_report(path)
    if found is not None:
        size = found.stat().st_size
        if size > MAX_REPORT_BYTES:  # a model file or a data dump passed by mistake: not read into memory
            raise UserError(f"{found} is {size / 2**20:.0f} MB, too large to be an ehrdebug report.json")
        try:
            data = json.loads(found.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {found}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
            raise UserError(f"{found} is not an ehrdebug report (no findings list)")
        problem = _shape_problem(data)
        if problem:  # a field of the wrong type would only fail while rendering (exit 3)
            raise UserError(f"{found} is not an ehrdebug report: {problem}")
        try:
            return Report.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{found} is not an ehrdebug report: {exc}") from exc
    recorded = _recorded(path)
    if recorded is not None:
        return recorded
    raise UserError(f"no saved report for {path}: run `ehrdebug doctor {path}` first")


FIELD_TYPES = {"probe": str, "title": str, "rule": str, "subject": str, "evidence": dict, "examples": list,
               "recipes": list}


def _shape_problem(data: dict) -> str | None:
    """What in a report.json does not have the type the doctor writes, or None."""
    for key, kind in (("subject", str), ("meta", dict)):
        if key in data and not isinstance(data[key], kind):
            return f"{key} must be a {kind.__name__}, got {type(data[key]).__name__}"
    for n, finding in enumerate(data["findings"]):
        if not isinstance(finding, dict):
            return f"findings[{n}] must be an object, got {type(finding).__name__}"
        for key in ("probe", "severity", "title"):
            if key not in finding:
                return f"findings[{n}] has no {key}"
        for key, kind in FIELD_TYPES.items():
            if key in finding and not isinstance(finding[key], kind):
                return f"findings[{n}].{key} must be a {kind.__name__}, got {type(finding[key]).__name__}"
        if "recipes" in finding and not all(isinstance(r, str) for r in finding["recipes"]):
            return f"findings[{n}].recipes must be a list of strings"
    return None


def _recorded(path: str) -> Report | None:
    """Findings a run recorded while it trained (EhrDebugCallback / RunLogger), as a report."""
    import os

    from ehrdebug.errors import UserError
    from ehrdebug.findings import Report
    from ehrdebug.runstore import open_run

    if not os.path.isdir(path):
        return None
    try:
        run = open_run(path)
    except UserError:
        from pathlib import Path

        from ehrdebug.runstore.reader import is_run_dir

        if is_run_dir(Path(path)):
            raise  # a run whose log or run.json is broken: say that, not "no saved report"
        return None
    findings = run.findings()
    if not findings:
        return None
    latest: dict[tuple[str, str], object] = {}
    for finding in findings:  # the last word of each probe on each subject
        latest[(finding.probe, finding.subject)] = finding
    return Report(subject=f"{run.kind} {path} (recorded during training)", findings=list(latest.values()),
                  meta={"source": "events.jsonl findings", "recorded": len(findings)})
