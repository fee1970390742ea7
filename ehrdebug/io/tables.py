"""Reading user data files: CSV, JSONL, Parquet or one sequence per line, streamed.

Files are read lazily and capped by ``limit`` so a several-GB file is sampled, never loaded whole.
Every problem a user can cause (missing file, empty file, missing column, bytes that are not UTF-8)
becomes a one-line ``UserError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Iterator
from typing import Any

from ehrdebug.errors import UserError, require_file

FORMATS = ("csv", "jsonl", "parquet", "lines")
TEXT_FIELD_GUESSES = ("text", "sequence", "input", "prompt", "source", "note", "input_text")


def detect_format(path: str) -> str:
    name = path.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "lines"


def _open_text(path: str) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def iter_records(path: str, limit: int | None = None, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield records as dicts (``{"text": line}`` for plain-line files), at most ``limit`` of them."""
    require_file(path, "data file")
    if os.path.getsize(path) == 0:
        raise UserError(f"data file is empty: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UserError(f"unknown data format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    count = 0
    try:
        for record in _READERS[fmt](path):
            yield record
            count += 1
            if limit is not None and count >= limit:
                return
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (bad byte at offset {exc.start}); re-encode it as UTF-8") from exc
    if count == 0:
        raise UserError(f"data file has no records: {path}")


def _iter_lines(path: str) -> Iterator[dict[str, Any]]:
    with _open_text(path) as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.strip():
                yield {"text": line}


def _iter_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with _open_text(path) as fh:
        first = fh.read(1)
        if first == "[":  # a JSON array file, small by nature
            fh.seek(0)
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
            for item in data:
                yield item if isinstance(item, dict) else {"text": item}
            return
        fh.seek(0)
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{lineno}: not valid JSON Lines: {exc.msg}") from exc
            yield item if isinstance(item, dict) else {"text": item}


def _iter_csv(path: str) -> Iterator[dict[str, Any]]:
    delimiter = "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","
    csv.field_size_limit(2**31 - 1)
    with _open_text(path) as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if not reader.fieldnames:
            raise UserError(f"data file has no header row: {path}")
        yield from reader


def _iter_parquet(path: str) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise UserError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from exc
    for batch in pf.iter_batches(batch_size=4096):
        yield from batch.to_pylist()


_READERS = {"csv": _iter_csv, "jsonl": _iter_jsonl, "parquet": _iter_parquet, "lines": _iter_lines}


def pick_field(record: dict[str, Any], field: str | None, path: str) -> str:
    """The text column: ``field`` if given (error naming the columns if absent), else a common name."""
    if field:
        if field not in record:
            raise UserError(f"{path}: no column {field!r} (columns: {', '.join(map(str, record))})")
        return field
    for guess in TEXT_FIELD_GUESSES:
        if guess in record:
            return guess
    for key, value in record.items():
        if isinstance(value, str):
            return key
    raise UserError(f"{path}: no text column found (columns: {', '.join(map(str, record))}); pass --field")


def read_texts(path: str, field: str | None = None, limit: int | None = 200_000) -> list[str]:
    """Texts of one column (or whole lines), at most ``limit``; a missing column is a UserError."""
    texts: list[str] = []
    column: str | None = None
    for record in iter_records(path, limit=limit):
        if column is None:
            column = pick_field(record, field, path)
        value = record.get(column)
        if value is None:
            continue
        texts.append(value if isinstance(value, str) else str(value))
    if not texts:
        raise UserError(f"{path}: column {column!r} is empty")
    return texts


def read_records(path: str, limit: int | None = 200_000, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Records as dicts; ``columns`` that are missing from the first record are a UserError."""
    rows = []
    for record in iter_records(path, limit=limit):
        if not rows and columns:
            missing = [c for c in columns if c not in record]
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, record))})")
        rows.append(record)
    return rows
