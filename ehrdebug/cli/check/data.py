"""``ehrdebug check data``: split leakage, label balance and epoch coverage of a dataset."""

from __future__ import annotations

import typer

from ehrdebug.cli.check import app
from ehrdebug.cli.common import FAIL_ON_HELP, FORMAT_HELP


@app.command("data")
def check_data(
    train: str = typer.Option(..., "--train", help="Training split (CSV, JSONL, Parquet or one example per line)."),
    validation: str | None = typer.Option(None, "--validation", help="Validation split."),
    test: str | None = typer.Option(None, "--test", help="Test split."),
    patient_field: str | None = typer.Option(None, "--patient-field", help="Column holding the patient id."),
    label_field: str | None = typer.Option(None, "--label-field", help="Column holding the class label."),
    text_field: str | None = typer.Option(None, "--text-field", help="Column compared for duplicates (default: all but ids/labels)."),
    target_field: str | None = typer.Option(None, "--target-field", help="Target column compared with --text-field (default: a guess)."),
    per_device_batch: int | None = typer.Option(None, "--per-device-batch", help="per_device_train_batch_size."),
    grad_accum: int | None = typer.Option(None, "--grad-accum", help="gradient_accumulation_steps."),
    devices: int | None = typer.Option(None, "--devices", help="Number of devices (data-parallel processes)."),
    epochs: float | None = typer.Option(None, "--epochs", help="num_train_epochs."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="max_steps (overrides epochs when > 0)."),
    drop_last: bool | None = typer.Option(None, "--drop-last/--no-drop-last", help="dataloader_drop_last."),
    training_args: str | None = typer.Option(None, "--training-args", help="HF TrainingArguments JSON or a run.json."),
    config: str | None = typer.Option(None, "--config", help="ehrdebug.toml / pyproject.toml to read."),
    limit: int = typer.Option(200_000, "--limit", help="Read at most this many records per split."),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    fail_on: str = typer.Option("fail", "--fail-on", help=FAIL_ON_HELP),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
) -> int:
    """Patients and examples shared between splits, class balance, and samples per epoch."""
    import os
    from dataclasses import fields

    from ehrdebug.cli.common import check_report_options, emit_report, require_number
    from ehrdebug.config import load_config
    from ehrdebug.errors import UserError
    from ehrdebug.findings import Report
    from probes.data_coverage import TrainingPlan
    from probes.data_suite import read_plan, run_data_probes

    if limit < 1:
        raise UserError(f"--limit must be at least 1, not {limit}")
    for flag, value in (("--per-device-batch", per_device_batch), ("--grad-accum", grad_accum), ("--devices", devices)):
        require_number(value, flag, low=1)
    require_number(epochs, "--epochs", above=0)
    require_number(max_steps, "--max-steps", low=-1)
    check_report_options(fmt, fail_on, output, (train, validation, test, training_args, config))
    cfg = load_config(os.path.dirname(os.path.abspath(train)), config)
    flags = {"per_device_batch": per_device_batch, "grad_accum": grad_accum, "devices": devices,
             "epochs": epochs, "max_steps": max_steps, "drop_last": drop_last}
    plan = read_plan(training_args)
    if plan is not None or any(v is not None for v in flags.values()):
        plan = plan or TrainingPlan()
        for f in fields(TrainingPlan):
            if flags.get(f.name) is not None:
                setattr(plan, f.name, flags[f.name])
    findings = run_data_probes(train, validation, test, config=cfg, patient_field=patient_field,
                               label_field=label_field, text_field=text_field, target_field=target_field, plan=plan, limit=limit,
                               subject=os.path.basename(train))
    splits = {k: v for k, v in (("train", train), ("validation", validation), ("test", test)) if v}
    report = Report(subject=f"data {', '.join(f'{k}={v}' for k, v in splits.items())}", findings=findings,
                    meta={"command": "check data", "splits": splits})
    code = emit_report(report, fmt, fail_on, output, inputs=(train, validation, test, training_args, config))
    raise typer.Exit(code)
