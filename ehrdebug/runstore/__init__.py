"""The run directory: the contract between training (writers) and inspection (readers).

See docs/run-format.md. ``EhrDebugCallback`` imports transformers, so it is loaded lazily.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.runstore.events import FORMAT_VERSION
from ehrdebug.runstore.history import History, Series
from ehrdebug.runstore.reader import Checkpoint, EhrDebugRun, HFRun, Run, discover_runs, open_run, read_events
from ehrdebug.runstore.tail import EventTail, follow
from ehrdebug.runstore.writer import RunLogger

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "EhrDebugCallback",
    "EhrDebugRun",
    "EventTail",
    "HFRun",
    "History",
    "Run",
    "RunLogger",
    "Series",
    "discover_runs",
    "follow",
    "open_run",
    "read_events",
]


def __getattr__(name: str) -> Any:
    if name == "EhrDebugCallback":
        from ehrdebug.runstore.callback import EhrDebugCallback

        return EhrDebugCallback
    raise AttributeError(name)
