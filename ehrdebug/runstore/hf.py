"""Reading a plain Hugging Face Trainer output directory as a run.

HF writes ``trainer_state.json`` at the top when training ends (``trainer.save_state()``) and inside
every ``checkpoint-N/`` while it runs. The most advanced state holds the whole log history up to that
point; a resumed run repeats steps, which ``History.normalized()`` deduplicates (last write wins).
"""

from __future__ import annotations

import json
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


def load_state(path: Path) -> dict[str, Any]:
    """The most advanced trainer_state.json, with log entries of all states merged in step order."""
    states = []
    for file in state_files(path):
        try:
            states.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {file}: {exc}") from exc
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
        step = int(entry.get("step", 0))
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
            except (OSError, json.JSONDecodeError):
                continue
            archs = data.get("architectures") or []
            return archs[0] if archs else str(data.get("model_type", ""))
    return ""
