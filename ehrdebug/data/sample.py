"""Where the shipped sample data lives and how the rest of ehrdebug reads it.

``sample_data_dir()`` is the repository's ``sample_data/ehr`` unless ``EHRDEBUG_SAMPLE_DATA`` points
elsewhere; ``load_task("seq2seq", "train")`` returns the records of one split of one task;
``resolve_data_path("sample_data/bases/bart")`` finds shipped data whatever the current folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

ENV = "EHRDEBUG_SAMPLE_DATA"
TASKS = ("seq2seq", "codes", "diagnosis", "coding")
SPLITS = ("train", "validation", "test")


SHIPPED = "sample_data"


def project_root() -> Path:
    """The folder ehrdebug is installed from (the checkout, or an editable install's source)."""
    return Path(__file__).resolve().parents[2]


def resolve_data_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as the user meant it: shipped data (``sample_data/...``) is found from where ehrdebug is installed.

    A path that exists from the current folder, an absolute path, or any relative path that does not name
    shipped data is returned unchanged (a user's own relative paths stay relative to the current folder).
    ``sample_data/ehr/...`` follows ``$EHRDEBUG_SAMPLE_DATA`` when that is set.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    if p.is_absolute() or p.exists() or not p.parts or p.parts[0] != SHIPPED:
        return p
    override = os.environ.get(ENV)
    if override and p.parts[1:2] == ("ehr",):
        return Path(override).joinpath(*p.parts[2:])
    shipped = project_root() / p
    return shipped if shipped.exists() else p


def sample_data_dir() -> Path:
    """``$EHRDEBUG_SAMPLE_DATA`` or ``<repo>/sample_data/ehr`` (``mimic3/``, ``seq2seq/``, ``codes/`` ...)."""
    override = os.environ.get(ENV)
    if override:
        return Path(override)
    return project_root() / SHIPPED / "ehr"


def task_path(task: str, split: str, root: str | os.PathLike[str] | None = None) -> Path:
    if task not in TASKS:
        raise UserError(f"unknown task {task!r} (expected one of: {', '.join(TASKS)})")
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} (expected one of: {', '.join(SPLITS)})")
    return Path(root) if root is not None else sample_data_dir()


def load_task(task: str, split: str, root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Records of ``<root>/<task>/<split>.jsonl`` (root defaults to ``sample_data_dir()``)."""
    path = task_path(task, split, root) / task / f"{split}.jsonl"
    return read_jsonl(path, missing="regenerate it with: python -m ehrdebug.data.ship")


def read_jsonl(path: str | os.PathLike[str], missing: str = "") -> list[dict[str, Any]]:
    """The records of one JSON Lines split file; a missing file or a bad line is one UserError line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"records not found: {path}" + (f" ({missing})" if missing else ""))
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{lineno}: not valid JSON Lines: {exc.msg}") from None
    return records


def code_vocabulary(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Every code of the seq2seq sample as written in its text (``seq2seq/codes.txt``), most frequent first."""
    path = (Path(root) if root is not None else sample_data_dir()) / "seq2seq" / "codes.txt"
    if not path.is_file():
        raise UserError(f"sample data not found: {path} (regenerate it with: python -m ehrdebug.data.ship)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
