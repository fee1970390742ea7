"""The ``codes`` task and MEDS label tasks from a MEDS dataset, with the dataset's own subject splits.

Split of a subject: ``metadata/subject_splits.parquet`` when the root has it (train→train,
tuning→validation, held_out→test), else the ``data/train|tuning|held_out/`` shard folder it sits in,
else ehrdebug's deterministic hash split. The summary says which (``split_source``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ehrdebug.data import meds_codes, meds_io
from ehrdebug.errors import UserError


def assign_splits(records: list[dict[str, Any]], layout: meds_io.MedsLayout, shard_split: dict[int, str]
                  ) -> str:
    """Set ``split`` on records whose subject has one in the dataset; return where splits came from."""
    splits = meds_io.subject_splits(layout)
    source, table = ("metadata", splits) if splits else ("shards", shard_split) if shard_split else ("hash", {})
    for r in records:
        split = table.get(r["patient_id"])
        if split is not None:
            r["split"] = split
    return source


def build_meds_codes(path: str, labels: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records (each with its ``split`` when the dataset gives one) and figures for the build summary."""
    layout = meds_io.find_layout(path)
    events, shard_split = meds_io.read_events(layout.data_files)
    subjects = meds_codes.subjects(events)
    stats: dict[str, int] = defaultdict(int)
    summary: dict[str, Any] = {"patients_read": len(subjects)}
    name = meds_io.dataset_metadata(layout).get("dataset_name")
    if name:
        summary["dataset"] = name
    if labels is None:
        records = meds_codes.codes_records(subjects, stats)
    else:
        rows, skipped = meds_io.read_labels(meds_io.label_files(labels, layout.root))
        if skipped:
            stats["labels_with_null"] = skipped
        if not rows:
            raise UserError(f"MEDS labels {labels}: no label rows with subject_id, prediction_time and boolean_value")
        records = meds_codes.label_records(subjects, rows, stats)
        summary["labels_read"] = len(rows)
    summary["split_source"] = assign_splits(records, layout, shard_split)
    summary["skipped"] = dict(stats)
    if records:
        outcome = "mortality" if labels is None else "label"
        summary[f"{outcome}_rate"] = round(sum(r[outcome] for r in records) / len(records), 4)
        summary["codes"] = len(Counter(c for r in records for c in r["codes"]))
        summary["events_with_values"] = sum(v is not None for r in records for v in r["values"])
    return records, summary
