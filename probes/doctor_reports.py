"""Where doctor reports are saved and found again (``ehrdebug doctor`` writes, ``ehrdebug report`` reads).

Reports go next to what was diagnosed but never into a folder holding anything of the user's: an
ehrdebug run keeps them in ``artifacts/doctor/`` (``artifacts/doctor-step-N/`` for a checkpoint), an HF
output dir gets ``ehrdebug-doctor/``, any other checkpoint or model dir a sibling ``ehrdebug-doctor-<name>/``.
A folder that exists and is not a doctor report gets a numbered neighbour (``-2``, ``-3`` …).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ehrdebug.errors import UserError
from ehrdebug.findings import Report

GENERATOR = "ehrdebug doctor"


def report_dir(path: str | os.PathLike[str]) -> Path:
    """The preferred report folder for ``path`` (see the module docstring)."""
    from probes.doctor import resolve_target

    folder = resolve_target(path).report_dir
    if folder is None:  # resolve_target always sets it; keep the type checker and readers honest
        raise UserError(f"no report folder for {path}")
    return folder


def is_doctor_folder(folder: Path) -> bool:
    """A folder we may write into: absent, empty, or holding only a report the doctor wrote."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    names = {c.name for c in folder.iterdir()}
    if not names:
        return True
    if not names <= {"report.json", "report.md"} or "report.json" not in names:
        return False
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("meta") or {}).get("generator") == GENERATOR


def save_report(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write report.json and report.md for ``path`` and return the folder."""
    from ehrdebug.report.render import render

    base = report_dir(path)
    folder, n = base, 1
    while not is_doctor_folder(folder):
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True, exist_ok=True)
    report.meta.setdefault("generator", GENERATOR)
    (folder / "report.json").write_text(render(report, "json"), encoding="utf-8")
    (folder / "report.md").write_text(render(report, "markdown"), encoding="utf-8")
    return folder


def find_saved_report(path: str | os.PathLike[str]) -> Path | None:
    """The newest doctor report.json for ``path``: a report file itself, a report folder, or a
    run / HF output dir / checkpoint that was diagnosed. For an ehrdebug run that includes the reports
    on its checkpoints (artifacts/doctor-step-N/) and the one the TUI keeps (artifacts/doctor-report.json)."""
    p = Path(path)
    if p.is_file():
        return p
    candidates = [p / "report.json"]
    try:
        base = report_dir(p)
    except UserError:
        base = None
    if base is not None and base.parent.is_dir():
        pattern = re.compile(re.escape(base.name) + r"(-\d+)?")
        candidates += [d / "report.json" for d in base.parent.iterdir() if d.is_dir() and pattern.fullmatch(d.name)]
    artifacts = p / "artifacts"
    if (p / "run.json").is_file() and artifacts.is_dir():
        candidates += [d / "report.json" for d in artifacts.glob("doctor*") if d.is_dir()]
        candidates.append(artifacts / "doctor-report.json")
    found = [c for c in candidates if c.is_file()]
    return max(found, key=lambda c: c.stat().st_mtime) if found else None
