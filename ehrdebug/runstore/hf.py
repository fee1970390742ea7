"""Reading a plain Hugging Face Trainer output directory as a run.

HF writes ``trainer_state.json`` at the top when training ends (``trainer.save_state()``) and inside
every ``checkpoint-N/`` while it runs. The most advanced state holds the whole log history up to that
point; a resumed run repeats steps, which ``History.normalized()`` deduplicates (last write wins).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dirs(path: Path) -> list[tuple[int, Path]]:
    out = []
    if path.is_dir():
        for child in path.iterdir():
            match = _CKPT.match(child.name)
            if match and child.is_dir():
                out.append((int(match.group(1)), child))
    return sorted(out)


def state_files(path: Path) -> list[Path]:
    files = [path / "trainer_state.json"] if (path / "trainer_state.json").is_file() else []
    files += [p / "trainer_state.json" for _, p in checkpoint_dirs(path) if (p / "trainer_state.json").is_file()]
    return files


def is_hf_output_dir(path: Path) -> bool:
    return bool(state_files(path))


_CACHE: dict[tuple[tuple[str, int, int], ...], dict[str, Any]] = {}
_CACHE_SIZE = 4


def load_state(path: Path) -> dict[str, Any]:
    """The most advanced trainer_state.json, with log entries of all states merged in step order.

    Parsed once per version of the files (path, mtime, size): a run with many large checkpoint states is
    read by several views in one command (the doctor checks it, then probes it, then names its report)."""
    files = state_files(path)
    try:
        key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        key = ()
    if key and key in _CACHE:
        return dict(_CACHE[key])
    state = _load_state(path, files)
    if key:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = state
    return dict(state)


def _load_state(path: Path, files: list[Path]) -> dict[str, Any]:
    states = []
    for file in files:
        try:
            state = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            raise UserError(f"cannot read {file}: {exc}") from exc
        if not isinstance(state, dict):
            raise UserError(f"{file} is not a trainer_state.json: expected a JSON object, got {type(state).__name__}")
        if not isinstance(state.get("log_history"), list):
            state["log_history"] = []
        if not isinstance(state.get("global_step"), int):
            state["global_step"] = 0
        states.append(state)
    if not states:
        raise UserError(f"{path}: no trainer_state.json at the top or in checkpoint-*/")
    latest = max(states, key=lambda s: (s.get("global_step") or 0, len(s.get("log_history") or [])))
    merged: list[dict[str, Any]] = []
    for state in sorted(states, key=lambda s: s.get("global_step") or 0):
        merged.extend(state.get("log_history") or [])
    return {**latest, "log_history": merged}


def log_to_events(log_history: list[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    """HF log entries as ehrdebug events (train/eval), so every view treats both kinds of run alike."""
    events = []
    for entry in log_history:
        if not isinstance(entry, dict):
            continue  # a stray entry is skipped, as a malformed events.jsonl line is
        step = entry.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
            continue
        step = int(step)
        is_eval = any(k.startswith("eval_") for k in entry)
        payload = {k: v for k, v in entry.items() if k != "step"}
        if "learning_rate" in payload and not is_eval:
            payload["lr"] = payload["learning_rate"]
        events.append({"t": t0, "step": step, "kind": "eval" if is_eval else "train", **payload})
    return events


def model_architecture(path: Path) -> str:
    for candidate in [path, *(p for _, p in reversed(checkpoint_dirs(path)))]:
        config = candidate / "config.json"
        if config.is_file():
            try:
                data = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
                continue
            if not isinstance(data, dict):
                continue
            archs = data.get("architectures") or []
            return str(archs[0]) if isinstance(archs, list) and archs else str(data.get("model_type", ""))
    return ""
