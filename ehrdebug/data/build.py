"""Build task datasets (seq2seq, codes, diagnosis, coding) from any supported EHR source.

Splits are by patient and deterministic: a patient's split comes from a hash of their id, so the
same patient lands in the same split in every task and every rebuild, and never in two. A MEDS
dataset's own ``metadata/subject_splits.parquet`` wins over the hash (``meds_build``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from typing import Any

from ehrdebug.data.records import CODE_STYLES, PatientRecord, format_code
from ehrdebug.errors import UserError

TASKS = ("seq2seq", "codes", "diagnosis", "coding")
SOURCES = ("synthetic", "mimic3", "mimic4", "meds")
SPLITS = ("train", "validation", "test")


def split_of(patient_id: int, train: float = 0.70, validation: float = 0.15) -> str:
    """Deterministic patient split (70/15/15 by default) from a hash of the id."""
    bucket = int(hashlib.sha256(str(patient_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < train:
        return "train"
    return "validation" if bucket < train + validation else "test"


def load_source(source: str, path: str | None, n_patients: int = 2000, seed: int = 0
                ) -> tuple[list[PatientRecord], dict[str, int]]:
    """Patients from a source. ``synthetic`` reads a ``data synth`` folder, or generates one when no path."""
    from ehrdebug.data import meds, mimic

    if source not in SOURCES:
        raise UserError(f"unknown --source {source!r} (expected one of: {', '.join(SOURCES)})")
    if source == "synthetic" and not path:
        from ehrdebug.data.synth import synthesize

        if n_patients < 1:
            raise UserError(f"--patients must be at least 1, not {n_patients}")

        with tempfile.TemporaryDirectory() as tmp:
            synthesize(tmp, n_patients, seed)
            return mimic.load_mimic3(tmp)
    if not path:
        raise UserError(f"--source {source} needs a PATH to the data")
    if source == "meds":
        return meds.load_meds(path)
    return mimic.load_mimic4(path) if source == "mimic4" else mimic.load_mimic3(path)


def _visits(p: PatientRecord) -> list[Any]:
    return [v for v in p.visits if v.codes]


def seq2seq_records(patients: list[PatientRecord], style: str = "seed", max_visits: int = 4,
                    max_codes: int = 6) -> list[dict[str, Any]]:
    """Seed 000's lines: ``{age} {ETHNICITY} {sex} <demo> <v> CODES <\\v> ... <END>``."""
    out = []
    for p in patients:
        visits = _visits(p)[:max_visits]
        if not visits or p.sex not in ("M", "F"):
            continue
        prompt = f"{visits[0].age} {p.ethnicity} {p.sex} <demo>"
        body = " ".join("<v> " + " ".join(format_code(c, style) for c in v.codes[:max_codes]) + " <\\v>"
                        for v in visits)
        target = f"{body} <END>"
        out.append({"patient_id": p.patient_id, "prompt": prompt, "target": target, "text": f"{prompt} {target}"})
    return out


def codes_records(patients: list[PatientRecord], style: str = "seed") -> list[dict[str, Any]]:
    """History (all stays but the last) for BEHRT/CEHR-BERT/Mamba; labels from the last stay."""
    out = []
    for p in patients:
        visits = _visits(p)
        if len(visits) < 2:
            continue
        first = visits[0].admit
        codes, ages, index, days = [], [], [], []
        for i, v in enumerate(visits[:-1]):
            for c in v.codes:
                codes.append(format_code(c, style))
                ages.append(v.age)
                index.append(i)
                days.append((v.admit - first).days)
        out.append({"patient_id": p.patient_id, "codes": codes, "ages": ages, "visits": index, "days": days,
                    "mortality": int(visits[-1].died),
                    "next_visit_codes": [format_code(c, style) for c in visits[-1].codes]})
    return out


def _write_jsonl(path: str, records: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _guard(out: str, names: list[str], force: bool) -> None:
    existing = [n for n in names if os.path.exists(os.path.join(out, n))]
    if existing and not force:
        raise UserError(f"{out} already has {existing[0]}; pass --force to overwrite or choose another --out")
    os.makedirs(out, exist_ok=True)


def write_splits(records: list[dict[str, Any]], out: str, force: bool = False, key: str = "patient_id",
                 lines_field: str | None = None) -> dict[str, int]:
    names = [f"{s}.jsonl" for s in SPLITS] + ([f"{s}.txt" for s in SPLITS] + ["codes.txt"] if lines_field else [])
    _guard(out, names, force)
    counts = {}
    for split in SPLITS:
        part = [r for r in records if r.get("split", split_of(r[key])) == split]
        part = [{k: v for k, v in r.items() if k != "split"} for r in part]
        _write_jsonl(os.path.join(out, f"{split}.jsonl"), part)
        if lines_field:
            with open(os.path.join(out, f"{split}.txt"), "w", encoding="utf-8", newline="\n") as fh:
                fh.writelines(f"{r[lines_field]}\n" for r in part)
        counts[split] = len(part)
    return counts


def _build_meds_codes(path: str | None, out: str, force: bool, labels: str | None) -> dict[str, Any]:
    from ehrdebug.data.meds_build import build_meds_codes

    if not path:
        raise UserError("--source meds needs a PATH to the data")
    records, figures = build_meds_codes(path, labels)
    if not records:
        raise UserError(f"no codes examples could be built from {path} (no subject has two visits)")
    return {"task": "codes", **figures, "splits": write_splits(records, out, force)}


def build_task(task: str, source: str = "synthetic", path: str | None = None, out: str = ".",
               style: str = "seed", max_visits: int = 4, max_codes: int = 6, force: bool = False,
               n_patients: int = 2000, seed: int = 0, labels: str | None = None) -> dict[str, Any]:
    """Write ``out/{train,validation,test}.jsonl`` for a task; return counts and figures for the summary.

    ``labels`` (MEDS only, ``codes`` task): a label parquet file or folder, or a task name under
    ``PATH/task_labels/``; one record per label row instead of one per patient.
    """
    if task not in TASKS:
        raise UserError(f"unknown task {task!r} (expected one of: {', '.join(TASKS)})")
    if style not in CODE_STYLES:
        raise UserError(f"unknown --code-style {style!r} (expected one of: {', '.join(CODE_STYLES)})")
    if max_visits < 1 or max_codes < 1:
        raise UserError("--max-visits and --max-codes must be at least 1")
    if task == "diagnosis":
        if source != "synthetic" or path:
            raise UserError("the diagnosis task is built only from the hand-written vignettes shipped with ehrdebug;"
                            " use --source synthetic and no PATH")
        from ehrdebug.data.vignettes import vignette_records

        records = vignette_records()
        return {"task": task, "splits": write_splits(records, out, force, key="input"),
                "diagnoses": len({r["output"] for r in records})}
    if labels is not None and (source != "meds" or task != "codes"):
        raise UserError("--labels reads MEDS task labels: use it with the codes task and --source meds")
    if task == "codes" and source == "meds":
        return _build_meds_codes(path, out, force, labels)
    patients, stats = load_source(source, path, n_patients, seed)
    summary: dict[str, Any] = {"task": task, "patients_read": len(patients), "skipped": stats}
    if task == "seq2seq":
        records = seq2seq_records(patients, style, max_visits, max_codes)
    elif task == "codes":
        records = codes_records(patients, style)
    else:
        from ehrdebug.data.coding import coding_records

        records = coding_records(patients, seed)
    if source == "meds" and path:
        from ehrdebug.data.meds_build import assign_splits
        from ehrdebug.data.meds_io import find_layout

        summary["split_source"] = assign_splits(records, find_layout(path), {})
    if not records:
        need = "two stays with diagnoses" if task == "codes" else "diagnoses and a known sex"
        raise UserError(f"no {task} examples could be built from {path or 'the synthetic data'} (no patient has {need})")
    summary["splits"] = write_splits(records, out, force, lines_field="text" if task == "seq2seq" else None)
    if task == "seq2seq":
        vocab = Counter(c for r in records for c in r["text"].partition("<demo>")[2].split()
                        if c not in ("<v>", "<\\v>", "<END>"))
        with open(os.path.join(out, "codes.txt"), "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(f"{c}\n" for c, _ in sorted(vocab.items(), key=lambda kv: (-kv[1], kv[0])))
        summary["codes"] = len(vocab)
    elif task == "codes":
        summary["mortality_rate"] = round(sum(r["mortality"] for r in records) / len(records), 4)
    else:
        summary["concepts"] = len({r["output"] for r in records})
    return summary
