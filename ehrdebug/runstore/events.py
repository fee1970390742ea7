"""Event lines of ``events.jsonl``: compact JSON with ``t``, ``step`` and ``kind`` first.

The fixed key order and compact separators let readers skip whole kinds with a substring test
(``'"kind":"train"'``) before parsing, which is what makes a 1M-line log open in about a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

FORMAT_VERSION = 1
KINDS = ("train", "eval", "finding", "sample", "alert", "checkpoint", "status")
STATES = ("started", "resumed", "finished", "crashed")


def encode_event(kind: str, step: int, payload: dict[str, Any], t: float | None = None) -> str:
    from ehrdebug.findings import _jsonable

    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r} (expected one of: {', '.join(KINDS)})")
    record = {"t": round(t if t is not None else time.time(), 3), "step": int(step), "kind": kind}
    for key, value in payload.items():
        if key not in record:
            record[key] = _jsonable(value)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=True) + "\n"


def kind_marker(kind: str) -> str:
    return f'"kind":"{kind}"'


def parse_lines(lines: Iterable[str], kinds: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Parse complete lines, skipping blank and malformed ones (a torn write, a stray edit)."""
    # the compact marker, and the one ``json.dumps`` writes by default (a log written by another tool)
    markers = [m for k in kinds for m in (kind_marker(k), f'"kind": "{k}"')] if kinds else None
    for line in lines:
        if markers is not None and not any(m in line for m in markers):
            continue
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "kind" in event:
            yield event


def event_step(event: dict[str, Any]) -> int | None:
    """The integer step of an event (``0`` when absent); None for a step that is not a number."""
    step = event.get("step", 0)
    if isinstance(step, bool):
        return None
    if isinstance(step, int):
        return step
    if isinstance(step, float) and step.is_integer():
        return int(step)
    return None
