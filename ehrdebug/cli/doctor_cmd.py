"""``ehrdebug doctor PATH``: every probe that applies to a run, an HF output dir or a checkpoint.

Prints the ranked report (fails first) in the chosen format, saves report.md + report.json beside the
inputs (an ehrdebug run: <run>/artifacts/doctor/), and exits like ``check``: 0, 1 at --fail-on, 2 on
a usage error.
"""

from __future__ import annotations

import typer

from ehrdebug.cli.common import FAIL_ON_HELP, FORMAT_HELP

SINGLE_COMMAND = True
app = typer.Typer()


@app.command("doctor")
def doctor(
    path: str = typer.Argument(..., help="An ehrdebug run, an HF Trainer output dir, or a checkpoint/model dir."),
    data: str | None = typer.Option(None, "--data", help="Examples (CSV/JSONL/Parquet/lines) for data, tokenizer and model probes."),
    config: str | None = typer.Option(None, "--config", help="ehrdebug.toml / pyproject.toml to read."),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    fail_on: str = typer.Option("fail", "--fail-on", help=FAIL_ON_HELP),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the rendered report to this file."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle",
                                      help="Load pickle-only weights (pytorch_model.bin); they can run code: trusted files only."),
    base: str | None = typer.Option(None, "--base", help="A PEFT adapter's base model: a local dir or a hub id in the local HF "
                                                         "cache (default: adapter_config.json's base_model_name_or_path)."),
) -> int:
    """Diagnose a run or checkpoint: curves, metrics, data, tokenizer and model probes, ranked."""
    from ehrdebug.cli.common import check_report_options, emit_report
    from probes.doctor import diagnose, resolve_target
    from probes.doctor_reports import save_report

    check_report_options(fmt, fail_on, output, (path, data, config))  # fail before minutes of probing
    resolve_target(path)  # a path that is no run/checkpoint, or whose run.json is broken: one line, exit 2
    from ehrdebug.adapters import require_base

    require_base(path, base)  # an adapter whose base is neither local nor cached: say what to pass, exit 2
    report = diagnose(path, data=data, config=config, allow_pickle=allow_pickle, base=base)
    try:
        folder = save_report(report, path)
        typer.echo(f"ehrdebug: report saved to {folder}", err=True)
    except OSError as exc:
        typer.echo(f"ehrdebug: note: report not saved ({exc})", err=True)
    code = emit_report(report, fmt, fail_on, output, inputs=(path, data, config))
    raise typer.Exit(code)
