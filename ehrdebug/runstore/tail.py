"""Following an event log while another process appends to it.

``EventTail`` keeps a byte offset and the unfinished tail of the last line, so each ``read_new()``
reads only what was appended since the last call (never the whole file again) and a half-written
last line is held back until its newline arrives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ehrdebug.runstore.events import parse_lines


class EventTail:
    def __init__(self, path: str | os.PathLike[str], from_start: bool = True, kinds: tuple[str, ...] | None = None) -> None:
        self.path = Path(path)
        self.kinds = kinds
        self.offset = 0
        self._partial = b""
        self._inode: int | None = None
        if not from_start and self.path.exists():
            self.offset = self.path.stat().st_size

    def read_new(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        """Events appended since the last call; [] when nothing new (never blocks)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
            self.offset, self._partial = 0, b""  # the log was replaced or truncated: start over
        self._inode = stat.st_ino
        if stat.st_size <= self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(max_bytes if max_bytes else stat.st_size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return []
        complete, self._partial = data[: cut + 1], data[cut + 1 :]
        text = complete.decode("utf-8", errors="replace")
        return list(parse_lines(text.splitlines(), self.kinds))

    @property
    def pending_partial(self) -> bool:
        """True while a torn (not yet newline-terminated) last line is held back."""
        return bool(self._partial)


def follow(
    path: str | os.PathLike[str],
    poll: float = 0.5,
    stop: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield events as they are appended, polling every ``poll`` seconds, until ``stop()`` or ``timeout``."""
    tail = EventTail(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        events = tail.read_new()
        yield from events
        if any(e.get("kind") == "status" and e.get("state") in ("finished", "crashed") for e in events):
            return
        if stop is not None and stop():
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(poll)
