"""Reading a large ``events.jsonl`` in about a second: train/eval lines column-wise with pyarrow.

Per-line ``json.loads`` plus ``History.add_log`` costs ~20 µs a line, 20 s for a 1M-line log. Here the
train/eval lines (found by the fixed ``"kind":"…"`` marker the writer puts in every line) are handed to
``pyarrow.json`` in one block, and each column becomes a ``Series`` directly, routed exactly like
``History.add_log`` routes keys. The few other lines (samples, alerts, findings, status) are parsed one
by one. Anything pyarrow refuses (a column of mixed types, say) falls back to the run store's reader.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ehrdebug.runstore.history import History, Series, is_eval_loss_key

_SKIP = {"t", "step", "kind", "epoch", "time", "split"}
# the writer's compact marker, and json.dumps' default spacing (a log written by another tool)
_CURVE_MARKERS = (b'"kind":"train"', b'"kind":"eval"', b'"kind": "train"', b'"kind": "eval"')
_META = {"train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"}


def read_log(path: str | Path) -> tuple[History, list[dict[str, Any]], list[tuple[float, int]]]:
    """``(history, other events, (t, step) of the last train lines)``; a ValueError when pyarrow cannot."""
    data = Path(path).read_bytes()
    end = data.rfind(b"\n")
    data = data[: end + 1] if end >= 0 else b""  # a torn last line is left for the tail
    history = History(meta={"source": "ehrdebug", "run": str(Path(path).parent)})
    if not data:
        return history, [], []
    table = _parse_numeric(data)
    other = _other_events(data)
    history, rate = _from_table(table, history)
    return history, other, rate


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
        pa.field(k, pa.int64() if k == "step" else pa.float64()) for k in _sample_keys(data) if k != "kind"
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
        sep = rb'\s*:\s*' if spaced else rb":"
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


def _from_table(table: Any, history: History) -> tuple[History, list[tuple[float, int]]]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    curve_rows = pc.is_in(table.column("kind"), value_set=pa.array(["train", "eval"]))
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
    for name in table.column_names:
        if name in _SKIP or name in _META:
            continue
        try:
            values, valid = _column(table, name)
        except ValueError:
            continue  # a non-numeric payload key (History.add_log skips those too)
        if not valid.any():
            continue
        if name in ("loss", "train_loss_step"):
            series = history.train
        elif is_eval_loss_key(name):
            series = history.evals.setdefault(name, Series(name))
        else:
            series = history.metrics.setdefault(name, Series(name))
        idx = np.flatnonzero(valid)
        series.steps.extend(steps[idx].tolist())
        series.values.extend(values[idx].tolist())
        if epochs is not None and epochs_valid[idx].all():
            series.epochs.extend(epochs[idx].tolist())
        elif epochs is not None:
            series.epochs.extend(
                e if ok else None
                for e, ok in zip(epochs[idx].tolist(), epochs_valid[idx].tolist(), strict=True)
            )
        else:
            series.epochs.extend([None] * len(idx))
    rate: list[tuple[float, int]] = []
    if "t" in table.column_names and "kind" in table.column_names:
        kinds = table.column("kind").slice(max(0, table.num_rows - 200)).to_pylist()
        times = table.column("t").slice(max(0, table.num_rows - 200)).to_pylist()
        base = max(0, table.num_rows - 200)
        rate = [
            (float(t), int(steps[base + i]))
            for i, (k, t) in enumerate(zip(kinds, times, strict=False))
            if k == "train" and isinstance(t, (int, float))
        ][-50:]
    return _normalized(history), rate


def _normalized(history: History) -> History:
    """``History.normalized()`` only for series that need it (a 1M-point sorted series is left alone)."""
    import numpy as np

    def fix(series: Series) -> Series:
        if len(series.steps) < 2 or bool(np.all(np.diff(np.asarray(series.steps)) > 0)):
            return series
        return series.normalized()

    return History(
        train=fix(history.train),
        evals={k: fix(v) for k, v in history.evals.items()},
        metrics={k: fix(v) for k, v in history.metrics.items()},
        meta=history.meta,
    )
