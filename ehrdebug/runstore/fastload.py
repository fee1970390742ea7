"""Reading a large ``events.jsonl`` in about a second or less, column-wise instead of line by line.

Per-line ``json.loads`` plus ``History.add_log`` costs ~20 µs a line, 20 s for a 1M-line log. ``load`` first
tries ``compact`` (the writer's own line format, cut with numpy: about half the CPU of pyarrow's JSON
reader, and no per-point Python objects); a log it does not
recognise (written by another tool with spaces, say) is handed to ``pyarrow.json`` in one block, each
column becoming a series routed exactly like ``History.add_log`` routes keys, the few other lines
(samples, alerts, findings, status) parsed one by one. Anything pyarrow refuses (a column of mixed types,
say) is a ValueError, and the caller falls back to the run store's line reader.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrdebug.runstore.compact import PAD, build, read_compact, target
from ehrdebug.runstore.history import History, route

_SKIP = {"t", "step", "kind", "epoch", "time", "split"}
# the writer's compact marker, and json.dumps' default spacing (a log written by another tool)
_CURVE_MARKERS = (b'"kind":"train"', b'"kind":"eval"', b'"kind": "train"', b'"kind": "eval"')
_META = {"train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"}


@dataclass
class LogRead:
    """What one read of an event log found; ``end`` is the byte offset after its last complete line, where
    a follower (``EventTail``) takes over so that no line is lost or read twice."""

    history: History
    other: list[dict[str, Any]]
    rate: list[tuple[float, int]]
    end: int


def read_log(path: str | Path) -> tuple[History, list[dict[str, Any]], list[tuple[float, int]]]:
    """``(history, other events, (t, step) of the last train lines)``; a ValueError when pyarrow cannot."""
    got = load(path)
    return got.history, got.other, got.rate


def load(path: str | Path) -> LogRead:
    """The log's complete lines: the writer's compact train/eval lines column-wise (``compact``), else
    every line through pyarrow; a ValueError when neither can (the caller then reads it line by line)."""
    buf, size = _read_padded(Path(path))
    end = buf.rfind(b"\n", 0, size) + 1  # a torn last line is left for the tail
    meta = {"source": "ehrdebug", "run": str(Path(path).parent)}
    if not end:
        return LogRead(History(meta=meta), [], [], 0)
    fast = read_compact(buf, end, meta)
    if fast is not None:
        data: Any = memoryview(buf)[:end]
        history, other = fast
    else:
        data = bytes(memoryview(buf)[:end])
        table = _parse_numeric(data)
        found = _other_by_row(data, table)
        other = found if found is not None else _other_events(data)
        history = _from_table(table, History(meta=meta))
    return LogRead(history, other, _recent_rate(data), end)


def _read_padded(path: Path) -> tuple[bytearray, int]:
    """The file's bytes in a buffer with ``PAD`` zero bytes after them (read once, never copied)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        buf = bytearray(size + PAD)
        size = fh.readinto(memoryview(buf)[:size]) if size else 0
    return buf, size


def _recent_rate(data: Any, width: int = 65536) -> list[tuple[float, int]]:
    """``(t, step)`` of the last 50 train lines, from the log's tail (the rate and ETA need no more)."""
    out: list[tuple[float, int]] = []
    tail = bytes(data[-width:]).split(b"\n")
    for line in tail[1:] if len(data) > width else tail:
        if not any(m in line for m in _CURVE_MARKERS[::2]) or b'"train"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        t, step = event.get("t"), event.get("step")
        if (
            event.get("kind") == "train"
            and isinstance(t, (int, float))
            and isinstance(step, int)
            and not isinstance(step, bool)
        ):
            out.append((float(t), step))
    return out[-50:]


def _sample_keys(data: bytes, windows: int = 12, width: int = 16384) -> list[str]:
    """Numeric keys of train/eval lines in the head, the tail and ``windows`` slices across the log."""
    keys: dict[str, None] = {}
    n = len(data)
    starts = sorted({0, max(0, n - width), *(int(i * n / windows) for i in range(windows))})
    for start in starts:
        chunk = data[start : start + width].split(b"\n")[1:-1] if start else data[:width].split(b"\n")[:-1]
        for line in chunk:
            if not any(m in line for m in _CURVE_MARKERS):
                continue
            try:
                event = json.loads(line)
            except ValueError:  # not JSON, or bytes that are not UTF-8
                continue
            for key, value in event.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    keys.setdefault(key, None)
    return list(keys)


def _parse_numeric(data: bytes) -> Any:
    """Every line parsed by pyarrow, keeping ``kind`` and the sampled numeric keys only (nested payloads
    of findings are skipped unread, so their varying shapes cannot break the parse)."""
    import pyarrow as pa
    import pyarrow.json as pj

    fields = [pa.field("kind", pa.string())]
    fields += [
        pa.field(k, pa.int64() if k == "step" else pa.float64())
        for k in _sample_keys(data)
        if k not in ("kind", "t")  # the time of every line is not needed: _recent_rate reads the tail's
    ]
    options = pj.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    try:
        return pj.read_json(
            io.BytesIO(data), parse_options=options, read_options=pj.ReadOptions(block_size=8 << 20)
        )
    except Exception as exc:  # noqa: BLE001 - a malformed line, a string where a number was: fall back
        raise ValueError(f"pyarrow could not read the log: {exc}") from exc


_OTHER_KIND: dict[bool, Any] = {}


def _other_kind_pattern(spaced: bool) -> Any:
    """The compact marker (as the run store writes it) is a literal the regex engine finds fast; a log
    written with ``json.dumps``' default spacing needs the slower whitespace-tolerant pattern."""
    import re

    if spaced not in _OTHER_KIND:
        from ehrdebug.runstore.events import KINDS

        others = "|".join(k for k in KINDS if k not in ("train", "eval")).encode()
        sep = rb"\s*:\s*" if spaced else rb":"
        _OTHER_KIND[spaced] = re.compile(rb'"kind"' + sep + rb'"(?:' + others + rb')"')
    return _OTHER_KIND[spaced]


def _other_events(data: bytes) -> list[dict[str, Any]]:
    """Events that are not train/eval (samples, alerts, findings, status, checkpoints), found by one C-speed
    regex pass over their ``"kind":"…"`` marker and parsed in full by json, in log order."""
    pattern = _other_kind_pattern(spaced=data.find(b'"kind": ') >= 0)
    found: dict[int, bytes] = {}  # by line start: a nested "kind" key must not count a line twice
    for match in pattern.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if start in found:
            continue
        end = data.find(b"\n", match.end())
        found[start] = data[start : len(data) if end < 0 else end]
    out = []
    for _, line in sorted(found.items()):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "kind" in event:
            out.append(event)
    return out


def _other_by_row(data: bytes, table: Any) -> list[dict[str, Any]] | None:
    """The non-train/eval events, located through pyarrow's ``kind`` column: row i is line i when the log
    has no blank lines (then there are as many newlines as rows); None otherwise (the regex pass is used)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    curve = pc.fill_null(pc.is_in(table.column("kind"), value_set=pa.array(["train", "eval"])), False)
    rows = np.flatnonzero(~curve.to_numpy(zero_copy_only=False))
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    if len(ends) != table.num_rows:
        return None
    out = []
    for row in rows.tolist():
        start = int(ends[row - 1]) + 1 if row else 0
        try:
            event = json.loads(data[start : int(ends[row])])
        except ValueError:
            return None  # not the line pyarrow read: let the regex pass find them
        if isinstance(event, dict) and "kind" in event:
            out.append(event)
    return out


def _column(table: Any, name: str) -> tuple[Any, Any]:
    """(values as float64 numpy, validity mask) of a numeric column; a ValueError for any other type."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
        raise ValueError(f"column {name!r} is {col.type}, not numeric")
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    values = (
        pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        if not pa.types.is_null(col.type)
        else np.zeros(len(valid))
    )
    return values, valid


def _from_table(table: Any, history: History) -> History:
    """Each numeric column of the train/eval rows routed as ``History.add_log`` routes its key, the series
    put together in line order and normalised as the compact reader does (``compact._build``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    curve_rows = pc.fill_null(pc.is_in(table.column("kind"), value_set=pa.array(["train", "eval"])), False)
    rows = np.flatnonzero(curve_rows.to_numpy(zero_copy_only=False)).astype(np.int64)
    table = table.filter(curve_rows)
    steps, steps_valid = (
        _column(table, "step") if "step" in table.column_names else (np.zeros(table.num_rows), None)
    )
    steps = (
        np.where(steps_valid, steps, 0).astype(np.int64)
        if steps_valid is not None
        else steps.astype(np.int64)
    )
    epochs, epochs_valid = _column(table, "epoch") if "epoch" in table.column_names else (None, None)
    parts: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for j, name in enumerate(table.column_names):
        if name in _SKIP or name in _META:
            continue
        try:
            values, valid = _column(table, name)
        except ValueError:
            continue  # a non-numeric payload key (History.add_log skips those too)
        routed = route(name, 0.0)
        if routed is None or not valid.any():
            continue
        idx = np.flatnonzero(valid)
        part = (
            rows[idx] * 64 + min(j, 63),
            steps[idx],
            values[idx],
            epochs[idx] if epochs is not None else None,
            epochs_valid[idx] if epochs_valid is not None else None,
        )
        parts.setdefault(target(routed[0], name), []).append(part)
    build(history, parts)
    return history
