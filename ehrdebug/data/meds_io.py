"""Find and read a MEDS dataset as the standard lays it out, or a bare file or folder of event shards.

A MEDS root holds ``data/**/*.parquet`` (``subject_id, time, code, numeric_value``), ``metadata/
codes.parquet``, ``metadata/subject_splits.parquet`` (``train``/``tuning``/``held_out``) and
``metadata/dataset.json``; task labels live in ``task_labels/NAME/**/*.parquet`` (``subject_id,
prediction_time, boolean_value``). Only ``data/`` is read as events, so the metadata tables are never
mistaken for shards. Splits map to ehrdebug's names: train→train, tuning→validation, held_out→test.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime

from ehrdebug.errors import UserError

REQUIRED = ("subject_id", "time", "code")
LABEL_COLUMNS = ("subject_id", "prediction_time", "boolean_value")
SPLIT_NAMES = {"train": "train", "tuning": "validation", "held_out": "test"}
NOT_DATA = ("metadata", "task_labels", ".hydra")

Event = tuple[int, "datetime | None", str, "float | None"]  # subject, time (None: static), code, value


@dataclass
class MedsLayout:
    """Where things are: ``root`` is None for a bare file or folder of shards (no metadata to read)."""

    root: str | None
    data_files: list[str] = field(default_factory=list)

    def metadata(self, name: str) -> str | None:
        if self.root is None:
            return None
        path = os.path.join(self.root, "metadata", name)
        return path if os.path.exists(path) else None


def _parquet_under(folder: str) -> list[str]:
    found = []
    for d, dirs, files in os.walk(folder):
        dirs[:] = sorted(x for x in dirs if x not in NOT_DATA)
        found += [os.path.join(d, f) for f in files if f.endswith(".parquet")]
    return sorted(found)


def find_layout(path: str) -> MedsLayout:
    """A MEDS root (has ``data/``), its ``data/`` folder, one parquet file, or a folder of shards."""
    if os.path.isfile(path):
        return MedsLayout(None, [path])
    if not os.path.isdir(path):
        raise UserError(f"MEDS data not found: {path}")
    if os.path.isdir(os.path.join(path, "data")):
        root, data = path, os.path.join(path, "data")
    elif os.path.basename(os.path.normpath(path)) == "data" and os.path.isdir(os.path.join(path, "..", "metadata")):
        root, data = os.path.normpath(os.path.join(path, "..")), path
    else:
        root, data = None, path
    found = _parquet_under(data)
    if not found:
        raise UserError(f"{path}: no .parquet files (expected MEDS shards, e.g. data/*.parquet)")
    return MedsLayout(root, found)


def _table(file: str, what: str = "MEDS file") -> object:
    import pyarrow.parquet as pq

    if os.path.getsize(file) == 0:
        raise UserError(f"{what} is empty: {file}")
    try:
        return pq.read_table(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise UserError(f"{file}: not a readable Parquet file ({type(exc).__name__})") from exc


def _float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    # float32 shards: 7 significant digits is what they hold (102.6, not 102.5999984741211)
    return None if math.isnan(number) else float(f"{number:.7g}")


def _subject_id(value: object, file: str) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise UserError(f"{file}: subject_id must be an integer, got {str(value)[:30]!r}") from exc


def read_events(files: list[str]) -> tuple[list[Event], dict[int, str]]:
    """Every event in file order, and each subject's split when shards sit in ``train/``-style folders."""
    events: list[Event] = []
    shard_split: dict[int, str] = {}
    for file in files:
        table = _table(file)
        missing = [c for c in REQUIRED if c not in table.column_names]  # type: ignore[attr-defined]
        if missing:
            raise UserError(f"{file}: missing column {', '.join(missing)} (MEDS needs subject_id, time, code)")
        col = table.column  # type: ignore[attr-defined]
        values = col("numeric_value").to_pylist() if "numeric_value" in table.column_names else None  # type: ignore[attr-defined]
        parts = os.path.normpath(file).split(os.sep)
        split = next((SPLIT_NAMES[p] for p in reversed(parts[:-1]) if p in SPLIT_NAMES), None)
        for i, (sid, t, code) in enumerate(zip(col("subject_id").to_pylist(), col("time").to_pylist(),
                                               col("code").to_pylist(), strict=True)):
            if sid is None or code is None:
                continue
            if t is not None and not isinstance(t, datetime):
                raise UserError(f"{file}: column time must be a timestamp, got {type(t).__name__}")
            subject = _subject_id(sid, file)
            events.append((subject, t.replace(tzinfo=None) if t else None, str(code),
                           _float(values[i]) if values is not None else None))
            if split:
                shard_split[subject] = split
    if not events:
        raise UserError(f"MEDS data has no events: {os.path.dirname(files[0]) if files else ''}")
    return events, shard_split


def subject_splits(layout: MedsLayout) -> dict[int, str] | None:
    """``metadata/subject_splits.parquet`` in ehrdebug's split names; other split names are left out."""
    path = layout.metadata("subject_splits.parquet")
    if path is None:
        return None
    table = _table(path, "MEDS subject splits")
    if not {"subject_id", "split"} <= set(table.column_names):  # type: ignore[attr-defined]
        raise UserError(f"{path}: needs columns subject_id and split")
    out = {}
    for sid, split in zip(table.column("subject_id").to_pylist(), table.column("split").to_pylist(), strict=True):  # type: ignore[attr-defined]
        if sid is not None and split in SPLIT_NAMES:
            out[_subject_id(sid, path)] = SPLIT_NAMES[split]
    return out


def dataset_metadata(layout: MedsLayout) -> dict[str, object]:
    path = layout.metadata("dataset.json")
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def label_files(labels: str, root: str | None) -> list[str]:
    """``--labels``: a parquet file, a folder of them, or a task name under ``ROOT/task_labels/``."""
    candidates = [labels] + ([os.path.join(root, "task_labels", labels)] if root else [])
    for candidate in candidates:
        if os.path.isfile(candidate):
            return [candidate]
        if os.path.isdir(candidate):
            found = sorted(os.path.join(d, f) for d, _, fs in os.walk(candidate) for f in fs if f.endswith(".parquet"))
            if not found:
                raise UserError(f"{candidate}: no .parquet label files")
            return found
    where = f" (nor {candidates[1]})" if len(candidates) > 1 else ""
    raise UserError(f"MEDS labels not found: {labels}{where}")


def read_labels(files: list[str]) -> tuple[list[tuple[int, datetime, bool]], int]:
    """Label rows ``(subject_id, prediction_time, boolean_value)`` in file order; rows with a null are counted."""
    rows: list[tuple[int, datetime, bool]] = []
    skipped = 0
    for file in files:
        table = _table(file, "MEDS label file")
        missing = [c for c in LABEL_COLUMNS if c not in table.column_names]  # type: ignore[attr-defined]
        if missing:
            raise UserError(f"{file}: missing column {', '.join(missing)} (MEDS labels need "
                            f"{', '.join(LABEL_COLUMNS)})")
        cols = [table.column(c).to_pylist() for c in LABEL_COLUMNS]  # type: ignore[attr-defined]
        for sid, when, value in zip(*cols, strict=True):
            if sid is None or when is None or value is None:
                skipped += 1
                continue
            if not isinstance(when, datetime):
                raise UserError(f"{file}: prediction_time must be a timestamp, got {type(when).__name__}")
            rows.append((_subject_id(sid, file), when.replace(tzinfo=None), bool(value)))
    return rows, skipped
