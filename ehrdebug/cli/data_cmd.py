"""``ehrdebug data``: synthesize MIMIC-III-shaped EHR tables and build task datasets from any source."""

from __future__ import annotations

import json
import os

import typer

from ehrdebug.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Synthesize EHR data and build task datasets.")
MAX_PATIENTS = 10_000_000  # synthetic cohorts are generated in memory; beyond this is a typo, not a cohort


@app.command("synth")
def synth(
    out: str = typer.Option(..., "--out", help="Folder for PATIENTS, ADMISSIONS, DIAGNOSES_ICD, PROCEDURES_ICD."),
    patients: int = typer.Option(2000, "--patients", help="Number of synthetic patients."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes byte-identical files."),
    gzip: bool = typer.Option(False, "--gzip", help="Write .csv.gz (still byte-reproducible)."),
    force: bool = typer.Option(False, "--force", help="Overwrite tables already in --out."),
) -> None:
    """Write synthetic MIMIC-III v1.4 tables (ICD-9 without dots, dates shifted to 2100-2200)."""
    from ehrdebug.cli.common import require_number
    from ehrdebug.data.synth import TABLES, synthesize

    require_number(patients, "--patients", low=1, high=MAX_PATIENTS)
    if os.path.isfile(out):
        raise UserError(f"--out must be a folder, but {out} is a file")
    suffix = ".csv.gz" if gzip else ".csv"
    existing = [t for t in TABLES if os.path.exists(os.path.join(out, t + suffix))]
    if existing and not force:
        raise UserError(f"{out} already has {existing[0]}{suffix}; pass --force to overwrite")
    paths = synthesize(out, patients, seed, gzip)
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("build")
def build(
    task: str = typer.Argument(..., help="seq2seq, codes, diagnosis or coding."),
    path: str | None = typer.Argument(None, help="Data: a MIMIC-III/IV folder, a MEDS parquet file or folder, or a"
                                         " `data synth` folder. Without it --source synthetic generates data."),
    source: str = typer.Option("synthetic", "--source", help="synthetic, mimic3, mimic4 or meds. The diagnosis task"
                               " is always built from the shipped hand-written vignettes (--source synthetic)."),
    out: str = typer.Option(..., "--out", help="Folder for {train,validation,test}.jsonl."),
    code_style: str = typer.Option("seed", "--code-style", help="seed (250.00, 486, V3001), dotted (V30.01) or mimic"
                                   " (25000)."),
    max_visits: int = typer.Option(4, "--max-visits", help="seq2seq: first N stays per patient."),
    max_codes: int = typer.Option(6, "--max-codes", help="seq2seq: first N diagnoses (by SEQ_NUM) per stay."),
    patients: int = typer.Option(2000, "--patients", help="Synthetic source without PATH: patients to generate."),
    seed: int = typer.Option(0, "--seed", help="Synthetic generation and note rendering seed."),
    force: bool = typer.Option(False, "--force", help="Overwrite split files already in --out."),
    labels: str | None = typer.Option(None, "--labels", help="codes task, --source meds: MEDS task labels (a parquet"
                                      " file or folder, or a NAME under PATH/task_labels/); one record per label row."),
) -> None:
    """Build one task's splits (by patient, deterministic 70/15/15) and print a JSON summary."""
    from ehrdebug.cli.common import require_number
    from ehrdebug.data.build import build_task

    require_number(patients, "--patients", low=1, high=MAX_PATIENTS)
    require_number(max_visits, "--max-visits", low=1)
    require_number(max_codes, "--max-codes", low=1)
    if os.path.isfile(out):
        raise UserError(f"--out must be a folder, but {out} is a file")
    summary = build_task(task, source, path, out, code_style, max_visits, max_codes, force, patients, seed, labels)
    typer.echo(json.dumps(summary, indent=1))
