"""The first read of a run opened directly (``ehrdebug tui RUN``), done before Textual builds a screen.

Reading a 1M-line log takes ~0.6 s (the reader spreads its array work over the cores) and starting Textual
~0.4 s of CPU. Overlapping the two in threads is *slower* (1.0-1.1 s against 0.81-0.87 s for a 1M-line log
on 2 cores, ``benchmarks/bench_tui_open.py``): the reader's many short numpy/Arrow steps wait for the GIL
Textual's start holds. So a log up to ``SYNC_BYTES`` (about two seconds of reading) is read at once when the
app is created; a larger one in a daemon thread, so the app shows at once and the curves follow.
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


SYNC_BYTES = 200_000_000  # ~2M lines of the writer's format: read before Textual starts (see above)


def _log_size(run: Any) -> int:
    """Bytes in the run's event log (0 when it has none; then nothing is read here anyway)."""
    from ehrdebug.tui import services

    path = services.events_path(run)
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0


class FirstRead:
    """``read_live(run)`` (at once, or in a daemon thread for a large log), handed over once to the screen
    that shows ``run``."""

    def __init__(self, run: Any, sync_bytes: int | None = None) -> None:
        self.run = run
        self._done = threading.Event()
        self._result: tuple[LiveState, Any] | None = None
        self._taken = False
        if _log_size(run) <= (SYNC_BYTES if sync_bytes is None else sync_bytes):
            self._work()
        else:
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
