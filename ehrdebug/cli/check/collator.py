"""``ehrdebug check collator``: build real batches with the collator and check what carries loss."""

from __future__ import annotations

import typer

from ehrdebug.cli.check import app
from ehrdebug.cli.common import FAIL_ON_HELP, FORMAT_HELP


@app.command("collator")
def check_collator(
    data: str = typer.Option(..., "--data", help="Examples: raw text columns, or already-tokenized features."),
    tokenizer: str = typer.Option(..., "--tokenizer", help="Tokenizer directory (or a hub id when you have a hub)."),
    model_type: str = typer.Option(..., "--model-type", help="seq2seq, causal or mlm."),
    model: str | None = typer.Option(None, "--model", help="Model dir (config.json is enough): decoder start id and shift."),
    collator: str | None = typer.Option(None, "--collator", help="Your collator as module:attr or file.py:attr."),
    input_field: str | None = typer.Option(None, "--input-field", help="Input/prompt text column."),
    target_field: str | None = typer.Option(None, "--target-field", help="Target/response text column."),
    pretokenized: bool | None = typer.Option(
        None, "--pretokenized/--raw", help="Feed stored features as they are / tokenize text (default: input_ids present)."),
    padding: str = typer.Option("none", "--padding", help="Tokenize raw text with padding none (collator pads) or max_length."),
    batch_size: int = typer.Option(8, "--batch-size", help="Examples per collated batch."),
    batches: int = typer.Option(4, "--batches", help="Number of batches to build."),
    config: str | None = typer.Option(None, "--config", help="ehrdebug.toml / pyproject.toml to read."),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    fail_on: str = typer.Option("fail", "--fail-on", help=FAIL_ON_HELP),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
) -> int:
    """String columns that crash the collator, pad ids in labels, decoder shift, prompt/EOS masking."""
    import os

    from ehrdebug.cli.common import check_report_options, emit_report, quiet_libraries
    from ehrdebug.config import load_config
    from ehrdebug.errors import UserError, require_file
    from ehrdebug.findings import Report
    from probes.data_collator import MODEL_TYPES
    from probes.data_suite import load_collator, load_tokenizer, model_collator_parts, run_collator_probe

    if model_type not in MODEL_TYPES:
        raise UserError(f"--model-type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}")
    if padding not in ("none", "max_length"):
        raise UserError(f"--padding must be none or max_length, not {padding!r}")
    if batch_size < 1 or batches < 1:
        raise UserError("--batch-size and --batches must be at least 1")
    require_file(data, "data file")
    check_report_options(fmt, fail_on, output, (data, tokenizer, model, collator, config))
    cfg = load_config(os.path.dirname(os.path.abspath(data)), config)
    with quiet_libraries():
        tok, notes = load_tokenizer(tokenizer, model_type)
        meta_model, start = model_collator_parts(model, model_type)
    fn = name = None
    if collator:
        fn, name = load_collator(collator, tok, meta_model)
    elif meta_model is not None:
        from transformers import DataCollatorForSeq2Seq

        fn, name = DataCollatorForSeq2Seq(tok, model=meta_model), "DataCollatorForSeq2Seq(model=…)"
    findings = run_collator_probe(
        data, tok, model_type, collator=fn, collator_name=name, decoder_start_token_id=start,
        input_field=input_field, target_field=target_field, pretokenized=pretokenized, config=cfg,
        padding=padding, batch_size=batch_size, max_batches=batches, notes=notes, subject=os.path.basename(data),
    )
    report = Report(subject=f"collator {model_type} on {data}", findings=findings,
                    meta={"command": "check collator", "tokenizer": tokenizer, "collator": name or "standard"})
    raise typer.Exit(emit_report(report, fmt, fail_on, output, inputs=(data, tokenizer, model, config)))
