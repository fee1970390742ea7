"""Reading user data files: CSV, JSONL, Parquet or one sequence per line, streamed.

Files are read lazily and capped by ``limit`` so a several-GB file is sampled, never loaded whole.
Lines are read in binary with a byte cap per record (``max_record_bytes``): a file with no line break
at all yields one truncated record instead of filling memory, and a zero-filled (sparse or
half-written) tail stops the read. Pass a ``ReadStats`` to learn how much was sampled and why reading
stopped. Every problem a user can cause (missing file, empty file, missing column, bytes that are not
UTF-8, a binary file) becomes a one-line ``UserError``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ehrdebug.errors import UserError, require_file

FORMATS = ("csv", "jsonl", "parquet", "lines")
TEXT_FIELD_GUESSES = ("text", "sequence", "input", "prompt", "source", "note", "input_text")
MAX_RECORD_BYTES = 1 << 20  # a longer line is truncated to this many bytes
MAX_SKIP_BYTES = 64 << 20  # give up on a file whose over-long line runs on past this many bytes
MAX_JSON_ARRAY_BYTES = 256 << 20  # a JSON array is parsed whole, so only up to this size
_CHUNK = 1 << 20
EXTRA_FIELDS = "_extra_fields"  # CSV: values of a row beyond its header's columns


@dataclass
class ReadStats:
    """What a read actually covered, so a report can say it was sampled."""

    path: str = ""
    file_bytes: int = 0
    bytes_read: int = 0
    records: int = 0
    truncated_records: int = 0
    limit: int | None = None
    limit_reached: bool = False
    stopped: str = ""

    @property
    def complete(self) -> bool:
        return not (self.limit_reached or self.stopped)

    def summary(self) -> str:
        parts = [f"{self.records:,} records read"]
        if self.limit_reached:
            parts.append(f"stopped at the record limit ({self.limit:,})")
        if self.stopped:
            parts.append(self.stopped)
        if self.truncated_records:
            parts.append(f"{self.truncated_records:,} over-long records cut to {MAX_RECORD_BYTES // 1024} KiB")
        whole = f"a {_size(self.file_bytes)} gzip file" if self.path.endswith(".gz") else _size(self.file_bytes)
        parts.append(f"{_size(self.bytes_read)} of {whole} scanned")
        return "; ".join(parts)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def detect_format(path: str) -> str:
    name = path.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "lines"


def _open_binary(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _decode(chunk: bytes, offset: int, path: str, cut: bool) -> str:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(chunk) - 3 and "end of data" in exc.reason:
            return chunk[: exc.start].decode("utf-8", errors="strict")  # the cap split a character
        raise UserError(
            f"{path} is not UTF-8 text (bad byte at offset {offset + exc.start}); re-encode it as UTF-8"
        ) from exc


def _capped_lines(path: str, stats: ReadStats, cap: int) -> Iterator[str]:
    """Decoded lines (line endings kept) of at most ``cap`` bytes; stops on a zero-filled region."""
    offset = 0
    with _open_binary(path) as raw:
        while True:
            chunk = raw.readline(cap + 1)
            if not chunk:
                return
            start, offset = offset, offset + len(chunk)
            cut = len(chunk) > cap and not chunk.endswith(b"\n")
            last = False
            if cut:
                chunk = chunk[:cap]
                skipped = 0
                while True:  # drop the rest of the over-long line, within a budget
                    rest = raw.readline(_CHUNK)
                    offset += len(rest)
                    skipped += len(rest)
                    if not rest or rest.endswith(b"\n"):
                        break
                    if b"\x00" in rest or skipped > MAX_SKIP_BYTES:
                        stats.stopped = f"stopped in a line longer than {_size(skipped + cap)} with no line break"
                        last = True
                        break
            stats.bytes_read = offset
            if b"\x00" in chunk:
                at = start + chunk.index(b"\x00")
                if stats.records == 0:
                    raise UserError(f"{path} holds NUL bytes (offset {at}): not a text data file")
                stats.stopped = f"stopped at NUL bytes at offset {at} (a binary or zero-filled tail)"
                return
            stats.truncated_records += cut
            yield _decode(chunk, start, path, cut)
            if last:
                return


def iter_records(
    path: str,
    limit: int | None = None,
    fmt: str | None = None,
    *,
    stats: ReadStats | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[dict[str, Any]]:
    """Yield records as dicts (``{"text": line}`` for plain-line files), at most ``limit`` of them."""
    require_file(path, "data file")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"data file is empty: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise UserError(f"unknown data format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    stats = stats if stats is not None else ReadStats()
    stats.path, stats.file_bytes, stats.limit = path, size, limit
    count = 0
    reader = _iter_parquet(path) if fmt == "parquet" else _READERS[fmt](path, _capped_lines(path, stats, max_record_bytes))
    try:
        for record in reader:
            yield record
            count += 1
            stats.records = count
            if limit is not None and count >= limit:
                stats.limit_reached = True
                return
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # a .gz that is not gzip, or is cut short
        kind = {"csv": "CSV", "jsonl": "JSON Lines", "lines": "text"}.get(fmt, fmt)
        raise UserError(f"{path}: cannot be read as {kind} ({exc}); it is not a valid gzip file") from exc
    if fmt == "parquet":
        stats.bytes_read = size
    if count == 0:
        raise UserError(f"data file has no records: {path}")


def _iter_lines(path: str, lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            yield {"text": line}


def _iter_jsonl(path: str, lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for lineno, line in enumerate(lines, 1):
        if lineno == 1 and line.lstrip().startswith("["):  # a JSON array file, parsed whole
            yield from _iter_json_array(path)
            return
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: not valid JSON Lines: {exc.msg}") from exc
        yield item if isinstance(item, dict) else {"text": item}


def _iter_json_array(path: str) -> Iterator[dict[str, Any]]:
    if os.path.getsize(path) > MAX_JSON_ARRAY_BYTES:
        raise UserError(f"{path}: a JSON array over {_size(MAX_JSON_ARRAY_BYTES)} cannot be sampled; convert it to JSON Lines")
    with _open_binary(path) as fh:
        raw = fh.read()
    try:
        data = json.loads(_decode(raw, 0, path, False))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array or JSON Lines")
    for item in data:
        yield item if isinstance(item, dict) else {"text": item}


def _iter_csv(path: str, lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    delimiter = "\t" if path.lower().removesuffix(".gz").endswith(".tsv") else ","
    csv.field_size_limit(max(4 * MAX_RECORD_BYTES, 131072))
    # fields beyond the header (an unquoted delimiter in a text field) are kept under one named column,
    # not csv's default ``None`` key, which breaks every consumer that sorts or prints column names
    reader = csv.DictReader(lines, delimiter=delimiter, restkey=EXTRA_FIELDS)
    try:
        if not reader.fieldnames:
            raise UserError(f"data file has no header row: {path}")
        yield from reader
    except csv.Error as exc:
        raise UserError(f"{path}: unreadable CSV near line {reader.line_num}: {exc}") from exc


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


_READERS = {"csv": _iter_csv, "jsonl": _iter_jsonl, "lines": _iter_lines}


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


def read_texts(
    path: str, field: str | None = None, limit: int | None = 200_000, *, stats: ReadStats | None = None
) -> list[str]:
    """Texts of one column (or whole lines), at most ``limit``; a missing column is a UserError.

    A cell longer than ``MAX_RECORD_BYTES`` characters (possible in Parquet) is cut to that length.
    """
    texts: list[str] = []
    column: str | None = None
    for record in iter_records(path, limit=limit, stats=stats):
        if column is None:
            column = pick_field(record, field, path)
        value = record.get(column)
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        texts.append(text[:MAX_RECORD_BYTES] if len(text) > MAX_RECORD_BYTES else text)
    if not texts:
        raise UserError(f"{path}: column {column!r} is empty")
    return texts


def read_records(
    path: str, limit: int | None = 200_000, columns: list[str] | None = None, *, stats: ReadStats | None = None
) -> list[dict[str, Any]]:
    """Records as dicts; ``columns`` that are missing from the first record are a UserError."""
    rows = []
    for record in iter_records(path, limit=limit, stats=stats):
        if not rows and columns:
            missing = [c for c in columns if c not in record]
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, record))})")
        rows.append(record)
    return rows
