"""The first read of a run opened directly (``ehrdebug tui RUN``), started before Textual builds a screen.

Reading a 1M-line log and starting Textual both take a few tenths of a second of CPU. The read runs mostly
inside numpy and Arrow, which release the GIL, so starting it in a thread when the app is created lets
the two overlap: the Live run screen takes the result when it mounts instead of starting the read then.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ehrdebug.tui.model import LiveState


def read_live(run: Any) -> tuple[LiveState, Any]:
    """``(state, tail)``: the run read once and the ``EventTail`` that follows it from where the read
    ended (the end of its last complete line), so no line is lost or read twice."""
    from ehrdebug.runstore import EventTail
    from ehrdebug.tui import services

    path = services.events_path(run)
    # the tail starts where the file ends *before* the read; when the read says where it ended (the fast
    # readers do) it moves there, else a line appended in between is read twice and LiveState drops it
    tail = EventTail(path, from_start=False) if path is not None else None
    state = LiveState.from_run(run)
    if tail is not None and state.read_end is not None:
        tail.offset = state.read_end
    return state, tail


class FirstRead:
    """``read_live(run)`` in a daemon thread, handed over once to the screen that shows ``run``."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._done = threading.Event()
        self._result: tuple[LiveState, Any] | None = None
        self._taken = False
        threading.Thread(target=self._work, name="ehrdebug-first-read", daemon=True).start()

    def _work(self) -> None:
        try:
            self._result = read_live(self.run)
        except Exception:  # noqa: BLE001 - the screen reads the run again and shows what went wrong
            self._result = None
        finally:
            self._done.set()

    def take(self, run: Any) -> tuple[LiveState, Any] | None:
        """The read of ``run`` (waiting for it to finish), the first time it is asked for; None for another
        run, a second time (a re-read must read the file again), or when the read failed."""
        if self._taken or Path(run.path) != Path(self.run.path):
            return None
        self._taken = True
        self._done.wait()
        return self._result
