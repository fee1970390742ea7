"""``pack_path``: one small archive with what matters once the pod is gone.

Per run: ``run.json``, ``events.jsonl``, ``ehrdebug.toml``, everything under ``artifacts/`` (metrics
summaries, reports, plots, predictions, Med2Vec embeddings) and the **best** checkpoint only: its
safetensors weights, model config and tokenizer, or, when it holds a LoRA ``adapter/``, only the
adapter (plus tokenizer and state) without the merged full weights. Never optimizer states (unless
``include_optimizer``, which also adds the latest checkpoint whole, to resume elsewhere), never the
other intermediate checkpoints or a half-written ``.tmp-step-N``. A benchmark folder packs its table,
report and plots and every run under ``runs/``. An interrupted run (no final status, a torn last line)
packs as it is, with a note, and gets the ``artifacts/summary.md`` it did not write. An existing archive is
never overwritten.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
RUN_FILES = ("run.json", "events.jsonl", "ehrdebug.toml")
SUMMARY = "summary.md"  # recipes.bench.run_summary.SUMMARY (not imported here: matplotlib is only needed to write one)


@dataclass
class PackResult:
    archive: Path
    size: int
    files: int
    runs: int
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def human_size(self) -> str:
        size = float(self.size)
        for unit in ("B", "KB", "MB", "GB"):
            if size < 1024 or unit == "GB":
                return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            size /= 1024
        return f"{self.size} B"


def _is_run(path: Path) -> bool:
    return (path / "run.json").is_file() or (path / "events.jsonl").is_file()


def find_runs(root: Path, depth: int = 3) -> list[Path]:
    if _is_run(root):
        return [root]
    if depth == 0 or not root.is_dir():
        return []
    found: list[Path] = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            found.extend(find_runs(child, depth - 1))
    return found


def _files(folder: Path) -> list[Path]:
    return (
        sorted(f for f in folder.rglob("*") if f.is_file() and ".tmp" not in f.name)
        if folder.is_dir()
        else []
    )


def _checkpoint_files(ckpt: Path, include_optimizer: bool) -> tuple[list[Path], bool]:
    """The files of a checkpoint to pack, and whether only its LoRA adapter is packed."""
    adapter = ckpt / "adapter"
    adapter_only = adapter.is_dir() and any(adapter.iterdir())
    keep = []
    for f in _files(ckpt):
        top = f.parent == ckpt
        if f.name in OPTIMIZER_FILES and not include_optimizer:
            continue
        if adapter_only and top and f.suffix in WEIGHT_SUFFIXES:
            continue  # the merged full weights: the adapter (and its base) rebuild them
        keep.append(f)
    return keep, adapter_only


def run_members(run: Path, include_optimizer: bool) -> tuple[list[Path], dict[str, Any], list[str]]:
    from recipes.bench.runinfo import read_run

    record = read_run(run)
    notes: list[str] = []
    if not (run / "artifacts" / SUMMARY).is_file():  # an interrupted run stopped before writing its own
        from recipes.bench.run_summary import write_run_summary

        write_run_summary(run)
        notes.append(f"{run.name}: wrote artifacts/{SUMMARY} (the run had none)")
    members = [run / name for name in RUN_FILES if (run / name).is_file()]
    members += _files(run / "artifacts")
    info: dict[str, Any] = {
        "name": run.name,
        "status": record.status,
        "checkpoint": None,
        "adapter_only": False,
    }
    if record.status != "finished":
        notes.append(f"{run.name}: run is {record.status} (no finished status); packing what it wrote")
    best = record.best_checkpoint()
    if best is not None:
        files, adapter_only = _checkpoint_files(best, include_optimizer)
        members += files
        info.update(checkpoint=str(best.relative_to(run)), adapter_only=adapter_only)
        if adapter_only:
            notes.append(f"{run.name}: best checkpoint {best.name}: LoRA adapter only")
        if include_optimizer:
            latest = max(
                (p for p in (run / "checkpoints").glob("step-*") if p.name[5:].isdigit()),
                key=lambda p: int(p.name[5:]),
            )
            if latest != best:
                members += _files(latest)
                info["resume_checkpoint"] = str(latest.relative_to(run))
    else:
        notes.append(f"{run.name}: no checkpoint to pack")
    return members, info, notes


def pack_path(path: str | Path, out: str | Path | None = None, include_optimizer: bool = False) -> PackResult:
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"not a run or benchmark folder: {root}")
    root = root.resolve()
    archive = Path(out) if out else root.parent / f"{root.name}.tar.gz"
    if archive.exists():
        raise UserError(f"{archive} already exists; choose another --out (nothing is overwritten)")
    if not archive.parent.is_dir():
        raise UserError(f"folder of --out does not exist: {archive.parent}")
    runs = find_runs(root)
    if not runs:
        raise UserError(f"{root}: no ehrdebug run in it (no run.json or events.jsonl)")
    members: list[Path] = []
    if not _is_run(root):  # a benchmark (or compare) folder: its own table, report and plots
        members += sorted(f for f in root.iterdir() if f.is_file())
    manifest: dict[str, Any] = {
        "created": time.time(),
        "source": str(root),
        "include_optimizer": include_optimizer,
        "runs": [],
    }
    notes: list[str] = []
    for run in runs:
        files, info, run_notes = run_members(run, include_optimizer)
        members += files
        manifest["runs"].append(info)
        notes += run_notes
    unique = list(dict.fromkeys(members))
    tmp = archive.with_name(f".{archive.name}.partial")
    with tarfile.open(tmp, "w:gz") as tar:
        for f in unique:
            tar.add(str(f), arcname=f"{root.name}/{f.relative_to(root)}", recursive=False)
        data = json.dumps(manifest, indent=2).encode("utf-8")
        entry = tarfile.TarInfo(f"{root.name}/PACK_MANIFEST.json")
        entry.size, entry.mtime = len(data), int(time.time())
        import io

        tar.addfile(entry, io.BytesIO(data))
    if archive.exists():  # written meanwhile by someone else: keep theirs
        tmp.unlink()
        raise UserError(f"{archive} already exists; choose another --out (nothing is overwritten)")
    os.replace(tmp, archive)
    return PackResult(
        archive=archive,
        size=archive.stat().st_size,
        files=len(unique) + 1,
        runs=len(runs),
        notes=notes,
        manifest=manifest,
    )
