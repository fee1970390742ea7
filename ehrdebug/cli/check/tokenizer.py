"""``ehrdebug check tokenizer``: structural tokens, code fragmentation, round-trip and lengths, for CI.

Imports nothing heavy at module level, and nothing that pulls torch when run: a tokenizer directory is
loaded with the ``tokenizers`` library or a transformers tokenizer class (see ``ehrdebug.tokenizers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ehrdebug.cli.check import app
from ehrdebug.cli.common import FAIL_ON_HELP, FORMAT_HELP

if TYPE_CHECKING:
    from ehrdebug.findings import Finding
    from ehrdebug.io.tables import ReadStats


@app.command("tokenizer")
def check_tokenizer(
    tokenizer: str = typer.Argument(..., help="Tokenizer directory (tokenizer.json, vocab.json+merges.txt, spiece.model, tokenizer.model or vocab.txt) or a hub id."),
    data: str = typer.Option(..., "--data", help="Sequences: CSV, JSONL, Parquet, one sequence per line, or code records (a 'codes' list per record)."),
    field: str | None = typer.Option(None, "--field", help="Column holding the text (default: text_field, else a guess)."),
    structural_tokens: str | None = typer.Option(None, "--structural-tokens", help="Comma-separated, e.g. '<demo>,<v>,<\\v>,<END>' (default: config, else found in the data)."),
    code_systems: str | None = typer.Option(None, "--code-systems", help="Comma-separated code systems, e.g. icd9,icd9_nodot (default: detected)."),
    max_length: int | None = typer.Option(None, "--max-length", help="max_length used when training (default: config, 512)."),
    end_token: str | None = typer.Option(None, "--end-token", help="Token that ends a sequence (default: config, else one named like <END>)."),
    config: str | None = typer.Option(None, "--config", help="ehrdebug.toml / pyproject.toml to read."),
    limit: int = typer.Option(200_000, "--limit", help="Read at most this many records."),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    fail_on: str = typer.Option("fail", "--fail-on", help=FAIL_ON_HELP),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the report to this file."),
) -> int:
    """Check a tokenizer against your data: structural tokens, codes, round-trip and truncation."""
    import os

    from ehrdebug.cli.common import check_report_options, emit_report, quiet_libraries
    from ehrdebug.codes import resolve_systems
    from ehrdebug.codetok import read_code_texts, saved_value_edges
    from ehrdebug.config import load_config, split_tokens
    from ehrdebug.errors import UserError, require_file
    from ehrdebug.findings import Report
    from ehrdebug.io.tables import ReadStats, read_texts
    from ehrdebug.tokenizers import load_tokenizer
    from probes.tokenizer_suite import run_tokenizer_probes

    check_report_options(fmt, fail_on, output, (tokenizer, data, config))  # never overwrite an input
    if limit < 1:
        raise UserError(f"--limit must be at least 1, not {limit}")
    if max_length is not None and max_length < 1:
        raise UserError(f"--max-length must be at least 1, not {max_length}")
    require_file(data, "data file")
    cfg = load_config(os.path.dirname(os.path.abspath(data)), config)
    cfg = cfg.with_overrides(
        structural_tokens=split_tokens(structural_tokens) if structural_tokens else None,
        code_systems=split_tokens(code_systems) if code_systems else None,
        max_length=max_length, end_token=end_token, text_field=field,
    )
    try:
        resolve_systems(cfg.code_systems, cfg.custom_code_systems)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    with quiet_libraries():
        tok = load_tokenizer(tokenizer)
    stats = ReadStats()
    texts = None if cfg.text_field else read_code_texts(data, limit, stats=stats, value_bins=saved_value_edges(tokenizer))
    if texts is None:  # not code-sequence records: one text column (or whole lines)
        texts = read_texts(data, cfg.text_field or None, limit=limit, stats=stats)
    findings = run_tokenizer_probes(tok, texts, cfg)
    findings.insert(0, _input_finding(data, stats, len(texts), tok.name))
    report = Report(
        subject=f"tokenizer {tok.name} on {os.path.basename(data)}",
        findings=findings,
        meta={"command": "check tokenizer", "tokenizer": tok.describe(), "data": data, "read": stats.summary(),
              "max_length": cfg.max_length},
    )
    raise typer.Exit(emit_report(report, fmt, fail_on, output, inputs=(tokenizer, data, config)))


def _input_finding(path: str, stats: ReadStats, n_texts: int, subject: str) -> Finding:
    """What was read: all of the file, or a sample (and why reading stopped)."""
    from ehrdebug.findings import Finding, Severity
    from probes.tokenizer_common import SAMPLE_SIZE

    evidence = {"texts": n_texts, "read": stats.summary(), "file_bytes": stats.file_bytes,
                "texts_analysed_in_detail": min(n_texts, SAMPLE_SIZE)}
    if stats.complete:
        return Finding("tokenizer.input", Severity.OK, f"read all {n_texts:,} texts of {path}", evidence=evidence, subject=subject)
    return Finding("tokenizer.input", Severity.INFO, f"sampled {n_texts:,} texts of {path}: {stats.summary()}",
                   evidence=evidence, rule="a large file is sampled (--limit records, each cut at 1 MiB), never loaded whole",
                   subject=subject)
