"""``open_run(path)``: one reader for ehrdebug runs and plain HF Trainer output directories.

Readers never write into a run except its ``artifacts/`` folder (reports), and never trust the
log to be whole: a torn last line or a stray malformed line is skipped, not fatal.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.runstore import hf
from ehrdebug.runstore.events import event_step, parse_lines
from ehrdebug.runstore.history import History

STALE_AFTER_S = 15 * 60
FAST_READ_BYTES = 8 << 20  # above this size history() uses the column-wise reader
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


def read_events(path: str | os.PathLike[str], kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """All complete events of ``events.jsonl`` (optionally only some kinds, filtered before parsing)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return list(parse_lines(fh, kinds))


def event_log_problem(path: str | os.PathLike[str], sample: int = 20) -> str | None:
    """Why ``events.jsonl`` is not an event log (its first ``sample`` complete lines all malformed), else None.

    A torn last line or a few stray lines are normal and not a problem; a file none of whose first
    lines is an event (random bytes, a CSV, a model file renamed) is the wrong file, not a damaged log.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()][:sample]  # complete lines only
    if not lines:
        if len(head) >= 1 << 20:  # a megabyte without a line break is no event log, and would be read whole
            return f"{path} is not an ehrdebug event log: no line break in its first 1 MB (see docs/run-format.md)"
        return None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "kind" in event:
            return None
    return (f"{path} is not an ehrdebug event log: none of its first {len(lines)} lines is a JSON event"
            " (see docs/run-format.md)")


def check_run(run: Run) -> None:
    """A one-line UserError when the files that make ``run`` a run are not what they claim: a run.json or
    trainer_state.json that is not a JSON object, an events.jsonl of garbage (a torn or stray line is fine)."""
    run.info  # noqa: B018 - parses run.json / trainer_state.json, raising the UserError when broken
    if run.kind == "ehrdebug":
        problem = event_log_problem(run.path / "events.jsonl")
        if problem:
            raise UserError(problem)


def list_step_dirs(path: Path) -> list[tuple[int, Path]]:
    out = []
    if path.is_dir():
        for child in path.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and child.is_dir():
                out.append((int(match.group(1)), child))
    return sorted(out)


class Run:
    """Common view of a run. ``kind`` is ``'ehrdebug'`` or ``'hf'``."""

    kind = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info(self) -> dict[str, Any]:
        raise NotImplementedError

    def events(self, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def checkpoints(self) -> list[Checkpoint]:
        raise NotImplementedError

    @property
    def status(self) -> str:
        raise NotImplementedError

    @property
    def last_update(self) -> float:
        raise NotImplementedError

    @property
    def architecture(self) -> str:
        return str(self.info.get("architecture") or "")

    @property
    def artifacts_dir(self) -> Path:
        return self.path / "artifacts"

    def history(self) -> History:
        history = History(meta={"source": self.kind, "run": str(self.path)})
        for event in self.events(kinds=("train", "eval")):
            step = event_step(event)
            if step is None:
                continue  # a stray line with no usable step is skipped like a malformed one
            epoch = event.get("epoch")
            epoch = epoch if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else None
            payload = {k: v for k, v in event.items() if k not in ("t", "step", "kind")}
            history.add_log(step, payload, epoch)
        return history.normalized()

    def findings(self) -> list[Any]:
        from ehrdebug.findings import Finding

        found = []
        for event in self.events(kinds=("finding",)):
            try:
                found.append(Finding.from_dict(event))
            except (TypeError, ValueError, KeyError, AttributeError):
                continue  # a malformed finding line is skipped, not fatal
        return found

    def samples(self) -> list[dict[str, Any]]:
        return self.events(kinds=("sample",))

    def alerts(self) -> list[dict[str, Any]]:
        return self.events(kinds=("alert",))

    def latest_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    def best_eval(self) -> tuple[str, int, float] | None:
        """(metric key, step, value) of the lowest eval loss; ``eval_loss`` preferred among several sets."""
        history = self.history()
        if not history.evals:
            return None
        key = "eval_loss" if "eval_loss" in history.evals else sorted(history.evals)[0]
        best = history.evals[key].best("min")
        return (key, best[0], best[1]) if best else None

    def _status_from_time(self) -> str:
        return "live" if time.time() - self.last_update < STALE_AFTER_S else "stale"


class EhrDebugRun(Run):
    kind = "ehrdebug"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def info(self) -> dict[str, Any]:
        path = self.path / "run.json"
        if not path.exists():
            return {}
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            raise UserError(f"cannot read {path}: {exc}") from exc
        if not isinstance(info, dict):
            raise UserError(f"{path} is not a run.json: expected a JSON object, got {type(info).__name__}")
        return info

    def events(self, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return read_events(self.events_path, kinds)

    def history(self) -> History:
        """Large logs are read column-wise (pyarrow, ~1 s per million lines); anything it refuses falls back."""
        try:
            big = self.events_path.stat().st_size > FAST_READ_BYTES
        except FileNotFoundError:
            big = False
        if big:
            from ehrdebug.runstore.fastload import read_log

            try:
                return read_log(self.events_path)[0]
            except (ValueError, ImportError):
                pass
        return super().history()

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint(step, path) for step, path in list_step_dirs(self.path / "checkpoints")]

    @property
    def last_update(self) -> float:
        try:
            return self.events_path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    @property
    def status(self) -> str:
        states = [e.get("state") for e in self.events(kinds=("status",))]
        if states and states[-1] in ("finished", "crashed", "interrupted"):
            return str(states[-1])
        return self._status_from_time() if states else "unknown"


class HFRun(Run):
    kind = "hf"

    def _state(self) -> dict[str, Any]:
        return hf.load_state(self.path)

    @property
    def info(self) -> dict[str, Any]:
        state = self._state()
        return {
            "architecture": hf.model_architecture(self.path),
            "source": "hf-trainer",
            "config": {k: state.get(k) for k in ("max_steps", "num_train_epochs", "train_batch_size", "eval_steps", "logging_steps", "save_steps")},
            "best_metric": state.get("best_metric"),
            "best_model_checkpoint": state.get("best_model_checkpoint"),
            "global_step": state.get("global_step"),
        }

    def events(self, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        events = hf.log_to_events(self._state().get("log_history", []), self.last_update)
        return [e for e in events if kinds is None or e["kind"] in kinds]

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint(step, path) for step, path in hf.checkpoint_dirs(self.path)]

    @property
    def last_update(self) -> float:
        files = hf.state_files(self.path)
        return max((f.stat().st_mtime for f in files), default=0.0)

    @property
    def status(self) -> str:
        if (self.path / "trainer_state.json").is_file():
            return "finished"
        state = self._state()
        max_steps = state.get("max_steps")
        if isinstance(max_steps, int) and max_steps > 0 and state["global_step"] >= max_steps:
            return "finished"
        return self._status_from_time()


def is_run_dir(path: Path) -> bool:
    """A folder that claims to be a run (``open_run`` then says what is wrong when it is a broken one: an
    events.jsonl or run.json that is a folder)."""
    return (path / "events.jsonl").exists() or (path / "run.json").exists() or hf.is_hf_output_dir(path)


def open_run(path: str | os.PathLike[str]) -> Run:
    """Open an ehrdebug run directory or an HF Trainer output directory; a UserError otherwise."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"run directory not found: {p}")
    if not p.is_dir():
        raise UserError(f"expected a run directory but got a file: {p}")
    for name in ("events.jsonl", "run.json"):
        if (p / name).exists() and not (p / name).is_file():
            raise UserError(f"{p / name} is not a file: this is not a readable ehrdebug run (see docs/run-format.md)")
    if (p / "events.jsonl").is_file() or (p / "run.json").is_file():
        return EhrDebugRun(p)
    if hf.is_hf_output_dir(p):
        return HFRun(p)
    raise UserError(f"{p} is not a run: no events.jsonl/run.json (ehrdebug) and no trainer_state.json (HF Trainer)")


def discover_runs(root: str | os.PathLike[str], max_depth: int = 3) -> list[Run]:
    """Every run under ``root`` (the root itself included), newest first; does not descend into runs."""
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"not a directory: {base}")
    found: list[Run] = []

    def walk(path: Path, depth: int) -> None:
        if is_run_dir(path):
            try:
                found.append(open_run(path))
            except UserError:  # one broken run (its log a folder, say) does not hide the others
                pass
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(c for c in path.iterdir() if c.is_dir() and not c.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    walk(base, 0)
    return sorted(found, key=lambda r: r.last_update, reverse=True)
