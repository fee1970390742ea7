"""One run directory read into what the benchmark, ``compare``, ``pack`` and the run summary need.

Works on any ehrdebug run (the training loop's, a baseline's) and on an interrupted one: a missing
``metrics_summary.json`` leaves the figures empty, a torn last event line is skipped by the reader,
and the best checkpoint falls back to the one the latest ``trainer_state.json`` names, then the latest.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

PREDICTIONS = "test_predictions.jsonl"
RESOURCES = "resources.json"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class RunRecord:
    path: Path
    info: dict[str, Any]
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        states = [e.get("state") for e in self.events if e.get("kind") == "status"]
        last = states[-1] if states else None
        return last if last in ("finished", "crashed", "interrupted") else "incomplete"

    @property
    def test(self) -> dict[str, Any]:
        return dict(self.summary.get("test") or {})

    @property
    def task(self) -> str:
        return str(self.summary.get("task") or self.info.get("task") or "")

    def curve(self, kind: str, key: str) -> tuple[list[int], list[float]]:
        steps, values = [], []
        for event in self.events:
            value = event.get(key)
            if event.get("kind") == kind and isinstance(value, (int, float)) and math.isfinite(value):
                steps.append(int(event.get("step", 0)))
                values.append(float(value))
        return steps, values

    def parameters(self) -> dict[str, Any]:
        return dict(self.summary.get("parameters") or self.info.get("parameters") or {})

    def predictions(self) -> list[dict[str, Any]]:
        path = self.path / "artifacts" / PREDICTIONS
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def best_checkpoint(self) -> Path | None:
        """The checkpoint the summary names as best, else the best step the latest state names, else the latest."""
        ckpts = self.path / "checkpoints"
        named = self.summary.get("best_checkpoint")
        if named and (self.path / named).is_dir():
            return self.path / named
        steps = (
            sorted((int(p.name[5:]), p) for p in ckpts.glob("step-*") if p.is_dir() and p.name[5:].isdigit())
            if ckpts.is_dir()
            else []
        )
        if not steps:
            return None
        state = _json(steps[-1][1] / "trainer_state.json")
        best = state.get("best_step") or (state.get("loop") or {}).get("best_step")
        found = dict(steps).get(int(best)) if isinstance(best, int) else None
        return found or steps[-1][1]

    def train_seconds(self) -> float | None:
        value = self.summary.get("train_seconds")
        if isinstance(value, (int, float)):
            return float(value)
        value = self.resources.get("wall_seconds")
        return float(value) if isinstance(value, (int, float)) else None

    def epochs(self) -> float | None:
        value = self.summary.get("epochs_done")
        return float(value) if isinstance(value, (int, float)) and value else None


def read_run(path: str | Path) -> RunRecord:
    from ehrdebug.runstore import read_events

    p = Path(path)
    if not (p / "run.json").is_file() and not (p / "events.jsonl").is_file():
        raise UserError(f"{p} is not an ehrdebug run directory (no run.json or events.jsonl)")
    events = read_events(p / "events.jsonl") if (p / "events.jsonl").is_file() else []
    return RunRecord(path=p, info=_json(p / "run.json"), summary=_json(p / "artifacts" / "metrics_summary.json"),
                     events=events, resources=_json(p / "artifacts" / RESOURCES))  # fmt: skip


def checkpoint_bytes(path: Path | None) -> int | None:
    """Bytes of a checkpoint's model files (weights, model JSON), not its optimizer state."""
    if path is None or not path.is_dir():
        return None
    total = 0
    for f in path.rglob("*"):
        if (
            f.is_file()
            and f.name != "optimizer.pt"
            and (f.suffix in (".safetensors", ".bin") or f.name == "model.json")
        ):
            total += f.stat().st_size
    return total
