"""Find the training data a target refers to, to read structural tokens and code frequencies from it.

The train recipes name their data under ``data`` (a directory with ``train.jsonl`` or a file); a run
records it in ``run.json``. When nothing can be found the fixes fall back to the project
configuration and the EHR grammar of seed 000.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"<\\?[A-Za-z_/\\]+>")
_TEXT_KEYS = ("target", "text", "prompt", "input", "output", "sequence")
TARGET_KEYS = ("target", "output", "label_text")  # what a seq2seq recipe trains the decoder on
DATA_KEYS = ("data", "data_dir", "train_file", "dataset")


def _candidates(value: Any, base: Path | None) -> Iterator[Path]:
    if isinstance(value, dict):
        for key in ("train", "path", "dir", *DATA_KEYS):
            if key in value:
                yield from _candidates(value[key], base)
        return
    if not isinstance(value, str) or not value:
        return
    p = Path(value)
    roots = [p] if p.is_absolute() else [Path.cwd() / p, *([base / p] if base else [])]
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for name in ("train.jsonl", "train.csv", "train.parquet", "train.txt"):
                if (root / name).is_file():
                    yield root / name


def _recipe_data(cfg: dict[str, Any]) -> Path | None:
    """A train-recipe config names its data as ``data: {task, root}`` (root None = the shipped sample data)."""
    data = cfg.get("data")
    if not (isinstance(data, dict) and "task" in data and "recipe" in cfg):
        return None
    try:
        from recipes.train.data import split_files

        path = split_files(cfg).get("train")
    except Exception:  # an incomplete config: fall back to the generic search
        return None
    return Path(path) if path else None


def train_file(cfg: dict[str, Any] | None, info: dict[str, Any] | None = None, base: Path | None = None) -> Path | None:
    """The first existing training-data file named by the config or run info."""
    found = _recipe_data(cfg or {})
    if found is not None:
        return found
    for source in (info or {}, cfg or {}):
        for key in DATA_KEYS:
            if key in source:
                for path in _candidates(source[key], base):
                    return path
    return None


def iter_targets(path: Path, limit: int = 50_000) -> Iterator[str]:
    """The training target of each of the first ``limit`` records (the first of ``TARGET_KEYS`` it has, else its
    text): the texts the recipes count codes in when they add code tokens."""
    from ehrdebug.io.tables import iter_records

    for n, record in enumerate(iter_records(str(path))):
        if n >= limit:
            return
        if isinstance(record, str):
            yield record
        elif isinstance(record, dict):
            value = next((record[k] for k in (*TARGET_KEYS, *_TEXT_KEYS) if isinstance(record.get(k), str)), None)
            if value is not None:
                yield value


def iter_texts(path: Path, limit: int = 5000) -> Iterator[str]:
    """Text fields of the first ``limit`` records (every string field that carries sequence text)."""
    from ehrdebug.io.tables import iter_records

    for n, record in enumerate(iter_records(str(path))):
        if n >= limit:
            return
        if isinstance(record, str):
            yield record
            continue
        for key in _TEXT_KEYS:
            value = record.get(key) if isinstance(record, dict) else None
            if isinstance(value, str):
                yield value


def structural_markers(texts: list[str], min_share: float = 0.05) -> list[str]:
    """Angle-bracket markers (``<demo>``, ``<v>``, ``<\\v>``, ``<END>``) that recur in the data, in first-seen order."""
    counts: Counter[str] = Counter()
    order: dict[str, None] = {}
    for text in texts:
        for marker in set(_MARKER.findall(text)):
            counts[marker] += 1
            order.setdefault(marker, None)
    floor = max(1, int(min_share * len(texts)))
    return [m for m in order if counts[m] >= floor]

