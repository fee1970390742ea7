"""The benchmark's live display: which model trains, its step out of the planned steps, and the ETA.

The step comes from the model's own ``events.jsonl`` (followed with ``EventTail`` from a thread), so
the display works the same for every recipe without any of them knowing it exists. On a terminal it
is a rich progress display; otherwise (CI, a log file) one line per model start and end.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


class BenchProgress:
    def __init__(self, total_models: int, enabled: bool = True) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self.enabled = enabled
        self.total_models = total_models
        self._progress: Any = None
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> BenchProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                      TimeRemainingColumn(), console=self.console, redirect_stdout=True, redirect_stderr=True)  # fmt: skip
            self._progress.start()
            self._overall = self._progress.add_task("benchmark", total=self.total_models, info="models")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._end_watch()
        if self._progress is not None:
            self._progress.stop()

    def start(self, index: int, model: str, planned_steps: int, run_dir: Path) -> None:
        label = f"[{index + 1}/{self.total_models}] {model}"
        if not self.live:
            if self.enabled:
                self.console.print(
                    f"bench {label}: training ({planned_steps or '?'} steps planned) -> {run_dir}"
                )
            return
        task = self._progress.add_task(label, total=planned_steps or None, info="starting")
        self._stop = threading.Event()
        self._watch = threading.Thread(
            target=self._follow, args=(task, run_dir / "events.jsonl", planned_steps), daemon=True
        )
        self._watch.start()

    def _follow(self, task: Any, events: Path, planned: int) -> None:
        from ehrdebug.runstore import EventTail

        tail = EventTail(events, kinds=("train", "eval"))
        while not self._stop.wait(0.5):
            for event in tail.read_new():
                step = int(event.get("step", 0))
                info = (
                    f"loss {event['loss']:.4f}"
                    if event.get("kind") == "train" and isinstance(event.get("loss"), float)
                    else None
                )
                if event.get("kind") == "eval":
                    shown = next(
                        (
                            k
                            for k in ("eval_auroc", "eval_aps", "eval_loss")
                            if isinstance(event.get(k), float)
                        ),
                        None,
                    )
                    info = f"{shown} {event[shown]:.4f}" if shown else None
                self._progress.update(
                    task,
                    completed=min(step, planned) if planned else step,
                    **({"info": info} if info else {}),
                )

    def _end_watch(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=2)
            self._watch = None

    def done(self, model: str, status: str, detail: str = "") -> None:
        self._end_watch()
        if not self.live:
            if self.enabled:
                self.console.print(f"bench {model}: {status}{' ' + detail if detail else ''}")
            return
        for task in self._progress.tasks:
            if task.description.endswith(f"] {model}") and not task.finished:
                self._progress.update(
                    task.id, completed=task.total or task.completed, info=f"{status} {detail}".strip()
                )
                if task.total is None:
                    self._progress.update(task.id, total=task.completed or 1, completed=task.completed or 1)
        self._progress.advance(self._overall)
