"""Reading the run store's own train/eval lines column-wise, without a JSON parser.

``RunLogger`` writes every line as ``{"t":…,"step":…,"kind":"train","loss":…,"lr":…,…}``: compact, keys
in a fixed order, one call's keys the same on every line. Such lines are cut at their ``:`` bytes with
numpy; a line is taken only when its bytes spell exactly the keys of a shape (the kind and keys of the
first train/eval line with as many keys) and every value is a JSON number. The value bytes are then
handed to Arrow as string views (no copy) and cast, which rounds exactly as Python's ``float()``. Every
other line (samples, findings, status, a NaN written as ``"nan"``, a torn or stray line, a nested payload)
is read by ``json.loads`` with the routing of ``History.add_log``, so the result is what the line reader
gives (``Run.history()`` and ``read_events``), line order and last-write-wins included
(tests/test_runstore_compact.py). About half the CPU of pyarrow's JSON reader on a 1M-line log.

Known differences, for bytes no JSON writer produces: a number with a dot not followed by a digit
(``1.e5``) is read, where the line reader skips the line as not JSON; a ``t`` (never used by the
history) that begins and ends with a digit is not checked further. Logs this reader does not recognise
(written with spaces, with carriage returns, over 2 GB) return None and are read another way.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from ehrdebug.runstore.compact_bytes import is_curve_kind, json_numbers, scan, shape_of
from ehrdebug.runstore.events import KINDS, event_step, kind_marker
from ehrdebug.runstore.history import META_KEYS, SKIPPED_KEYS, History, Series, last_of_each_step, route

PAD = 16  # zero bytes the buffer must have after the log: 8-byte windows are read past a line's end
MAX_FIELDS = 48
MAX_TEMPLATES = 12  # per number of keys: more shapes than this and the rest is read line by line
CHUNK = 1 << 14  # lines per chunk of array work
MAX_THREADS = 4  # reader threads for the chunks of a large log (numpy and Arrow release the GIL)
MAX_REST = 20_000  # lines of other shapes read by json (~10 µs each) before the log is left to pyarrow
_CURVE = ("train", "eval")
_CURVE_MARKERS = tuple(m for k in _CURVE for m in (kind_marker(k), f'"kind": "{k}"'))
_OTHER_MARKERS = tuple(m for k in KINDS if k not in _CURVE for m in (kind_marker(k), f'"kind": "{k}"'))
_SAFE_KEY = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-@#[]()")


def read_compact(
    buf: bytearray, size: int, meta: dict[str, Any]
) -> tuple[History, list[dict[str, Any]]] | None:
    """``(history, other events)`` of the complete lines ``buf[:size]`` (``buf`` has ``PAD`` zero bytes
    after them); None when the log is not mostly the writer's compact lines."""
    import numpy as np

    if size == 0:
        return History(meta=meta), []
    if size >= 2**31 - PAD or len(buf) < size + PAD or buf.find(b"\r", 0, size) >= 0:
        return None  # view offsets are int32; a CR splits lines for the text-mode line reader
    try:
        log = _Log(buf, size)
        parts: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        rest_lines = np.flatnonzero(~log.read_curves(parts))  # lines left for json
        if len(rest_lines) > MAX_REST + log.lines // 50:
            return None  # mostly lines of another shape: the general readers are the right tool
        history = History(meta=meta)
        other = log.read_rest(rest_lines, parts, history)
        build(history, parts)
    except (_Refused, OverflowError):
        return None
    return history, other


def _map_chunks(read: Any, chunks: list[Any]) -> list[Any]:
    """``read`` over ``chunks`` in order, on up to ``MAX_THREADS`` threads: the work is numpy gathers and
    Arrow casts, which release the GIL, so a 1M-line log reads in about half the time on two cores."""

    workers = min(_threads(), len(chunks))
    if workers <= 1:
        return [read(chunk) for chunk in chunks]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="ehrdebug-read") as pool:
        return list(pool.map(read, chunks))


def _threads() -> int:
    import os

    return min(MAX_THREADS, os.cpu_count() or 1)


class _Log:
    """The log's bytes, its line ends and the ``:`` of each line, and unaligned 8-byte little-endian words
    at any offset (``w8[p]`` holds bytes ``p … p+7``, byte ``p`` lowest). Memory is the cost here: each
    gather of one word per line walks the whole log, so every check of a line reads the few words
    gathered for it in one pass."""

    def __init__(self, buf: bytearray, size: int) -> None:
        import numpy as np

        self.buf, self.size = buf, size
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.w8 = np.ndarray((size + PAD - 7,), dtype="<u8", buffer=buf, strides=(1,))
        self.specials, at_end = scan(self.u8[:size], threads=_threads())  # every ':' and newline; which are newlines
        self.ends = self.specials[at_end]
        self.lines = len(self.ends)
        self.starts = np.empty_like(self.ends)
        self.starts[:1] = 0
        self.starts[1:] = self.ends[:-1] + 1
        self.first = np.empty_like(at_end)  # index in ``specials`` of each line's first ':'
        self.first[:1] = 0
        self.first[1:] = at_end[:-1] + 1
        self.count = at_end - self.first  # and how many ':' the line has

    def read_curves(self, parts: dict[tuple[str, str], list[tuple[Any, ...]]]) -> Any:
        """Read every train/eval line of a known shape into ``parts``; a mask of the lines read. A shape is
        the kind and keys of the first line of a group of lines with as many keys (a few shapes at most)."""
        import numpy as np

        read = np.zeros(self.lines, dtype=bool)
        candidates = np.flatnonzero((self.count >= 4) & (self.count <= MAX_FIELDS))
        counts = self.count[candidates]
        for n in np.flatnonzero(np.bincount(counts)).tolist() if len(counts) else []:
            group = candidates[counts == n]
            kind_at = self.specials[self.first[group] + 2] + 1  # the value after the third ':'
            group = group[is_curve_kind(self.w8[kind_at])]  # samples, findings … go to json at once
            for _ in range(MAX_TEMPLATES):
                if not len(group):
                    break
                shape = self._keys(int(group[0]), n)
                if shape is None:  # an odd first line: read by json; the next one proposes a shape
                    group = group[1:]
                    continue
                taken = self.read_template(group, n, *shape, parts)
                read[group[taken]] = True
                group = group[~taken]
        return read

    def _keys(self, line: int, n: int) -> tuple[str, list[str]] | None:
        """The kind and payload keys of one line, when they can be a shape (plain, distinct, routed by name)."""
        try:
            event = json.loads(bytes(self.buf[self.starts[line] : self.ends[line]]))
        except ValueError:
            return None
        if not isinstance(event, dict) or len(event) != n or list(event)[:3] != ["t", "step", "kind"]:
            return None
        if event["kind"] not in _CURVE:
            return None
        keys = list(event)[3:]
        for key in keys:
            if (
                key in ("t", "step", "kind")
                or key in META_KEYS
                or not key
                or not set(key.encode()) <= _SAFE_KEY
            ):
                return None
            if key in SKIPPED_KEYS and key != "epoch":
                return None  # "time", "split": values of any type, skipped by the routing
        return event["kind"], keys

    def read_template(
        self,
        lines: Any,
        n: int,
        kind: str,
        keys: list[str],
        parts: dict[tuple[str, str], list[tuple[Any, ...]]],
    ) -> Any:
        """Read the lines that spell exactly ``{"t":…,"step":…,"kind":"<kind>","k1":…,…,"kn":…}`` with JSON
        numbers for values into ``parts``; a mask of the lines taken (the others are left to json). Done in
        chunks of lines whose temporaries stay in the CPU's cache (the work is a few dozen array operations
        per line, each bound by memory when done on a million lines at once)."""
        import numpy as np

        chunks = [lines[at : at + CHUNK] for at in range(0, len(lines), CHUNK)]
        taken, columns = [], []
        for ok, values in _map_chunks(lambda chunk: self._read_chunk(chunk, n, kind, keys), chunks):
            taken.append(ok)
            columns.append(values)
        mask = np.concatenate(taken)
        if not mask.any():
            return mask
        order = lines[mask].astype(np.int64) * 64
        steps = np.concatenate([c[0] for c in columns])
        epochs = np.concatenate([c[1 + keys.index("epoch")] for c in columns]) if "epoch" in keys else None
        for j, key in enumerate(keys):
            routed = route(key, 0.0)
            if routed is not None:
                values = np.concatenate([c[1 + j] for c in columns])
                parts.setdefault(target(routed[0], key), []).append(
                    (order + j + 3, steps, values, epochs, None)
                )
        return mask

    def _read_chunk(self, lines: Any, n: int, kind: str, keys: list[str]) -> tuple[Any, list[Any]]:
        """(which of ``lines`` fit the shape, [steps, then each key's values] of those that do)."""
        import numpy as np

        shape = shape_of(n, kind, tuple(keys))
        anchors = np.empty((len(lines), n + 2), dtype=np.int64)  # each ':', the line's start and its end
        anchors[:, :n] = self.specials[self.first[lines][:, None] + np.arange(n)]
        anchors[:, n] = self.starts[lines]
        anchors[:, n + 1] = self.ends[lines]
        words = self.w8[anchors[:, shape.word_at] + shape.word_off]
        ok = ~(((words[:, shape.check] & shape.mask) ^ shape.want).any(axis=1))  # every literal in place
        ok &= (anchors[:, 0] - anchors[:, n] == 4) & (anchors[:, 3] - anchors[:, 2] == shape.gap)
        t_length = anchors[:, 1] - anchors[:, n] - 12
        t_first, t_last = (words[:, 0] >> 40) & 0xFF, words[:, 1] & 0xFF
        ok &= (
            (t_length >= 1)
            & (t_length <= 32)
            & (((t_first - 48) < 10) | (t_first == 45))
            & ((t_last - 48) < 10)
        )
        # step and the values: where each starts, how long it is, its first 8 bytes and its last byte
        start = anchors[:, shape.start_at] + shape.start_off
        length = anchors[:, shape.end_at] + shape.end_off - start
        first = words[:, shape.first]
        ok &= json_numbers(length, first, words[:, shape.last] & 0xFF).all(axis=1)
        if not ok.all():
            start, length, first = start[ok], length[ok], first[ok]
        try:
            return ok, self._cast(start, length, first)
        except _Refused:  # a value the checks let through but Arrow refuses (a step of 14.0): find its lines
            if len(lines) <= 64:
                return np.zeros(len(lines), dtype=bool), [np.empty(0)] * (len(keys) + 1)
            half = len(lines) // 2
            (ok1, v1), (ok2, v2) = (
                self._read_chunk(part, n, kind, keys) for part in (lines[:half], lines[half:])
            )
            return np.concatenate([ok1, ok2]), [np.concatenate([a, b]) for a, b in zip(v1, v2, strict=True)]

    def _cast(self, start: Any, length: Any, word: Any) -> list[Any]:
        """The values ``buf[start:start+length]`` (one column per value, the first the step) as numbers,
        through Arrow string views on the buffer (no copy); ``word`` holds each value's first 8 bytes. The
        views of all columns are built at once, column by column in memory."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        start, length, word = start.T, length.T, word.T  # (column, line)
        low = _low()
        inline = (word >> np.uint64(32)) & low[np.clip(length - 4, 0, 4)]
        middle = (length > 8) & (length <= 12)
        if middle.any():  # bytes 4 … 11 of a 9-12 byte value
            inline[middle] = self.w8[start[middle] + 4] & low[length[middle] - 4]
        views = np.empty((*start.shape, 2), dtype=np.uint64)
        views[:, :, 0] = length.astype(np.uint64) | ((word & low[np.minimum(length, 4)]) << np.uint64(32))
        views[:, :, 1] = np.where(length <= 12, inline, start.astype(np.uint64) << np.uint64(32))
        data = pa.py_buffer(self.buf)
        out = []
        for column, to in zip(views, [pa.int64()] + [pa.float64()] * (len(views) - 1), strict=True):
            array = pa.Array.from_buffers(pa.string_view(), len(column), [None, pa.py_buffer(column), data])
            try:
                got = pc.cast(array, to)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise _Refused(str(exc)) from exc
            # the values buffer as it is (``to_numpy()`` would import pandas, ~0.25 s, on its first call)
            dtype = np.int64 if to == pa.int64() else np.float64
            out.append(np.frombuffer(got.buffers()[1], dtype=dtype, count=len(got), offset=8 * got.offset))
        return out

    # -- the other lines ---------------------------------------------------------------------------
    def read_rest(
        self, lines: Any, parts: dict[tuple[str, str], list[tuple[Any, ...]]], history: History
    ) -> list[dict[str, Any]]:
        """Lines no template took, read as the line reader reads them: a line with a train/eval marker is a
        log entry whatever its kind, one with another kind's marker an event (``read_events(kinds=…)``)."""
        import numpy as np

        other: list[dict[str, Any]] = []
        points: dict[tuple[str, str], list[tuple[int, int, float, Any]]] = {}
        starts, ends = self.starts[lines].tolist(), self.ends[lines].tolist()
        for line, start, end in zip(lines.tolist(), starts, ends, strict=True):
            text = bytes(self.buf[start:end]).decode("utf-8", errors="replace")
            curve = any(m in text for m in _CURVE_MARKERS)
            if not curve and not any(m in text for m in _OTHER_MARKERS):
                continue
            text = text.strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                continue
            if not isinstance(event, dict) or "kind" not in event:
                continue
            if any(m in text for m in _OTHER_MARKERS):
                other.append(event)
            if curve:
                _route_line(event, line, points, history)
        for key, rows in points.items():
            order = np.asarray([r[0] for r in rows], dtype=np.int64)
            steps = np.asarray([r[1] for r in rows], dtype=np.int64)
            values = np.asarray([r[2] for r in rows], dtype=np.float64)
            has = np.asarray([r[3] is not None for r in rows], dtype=bool)
            epochs = np.asarray([r[3] if r[3] is not None else 0.0 for r in rows], dtype=np.float64)
            parts.setdefault(key, []).append((order, steps, values, epochs, has))
        return other


class _Refused(ValueError):
    """A value the cast refused: the log is read another way."""


def _route_line(
    event: dict[str, Any], line: int, points: dict[tuple[str, str], list[Any]], history: History
) -> None:
    """One event as ``Run.history()`` adds it (its step, its epoch, each key routed by ``route``)."""

    step = event_step(event)
    if step is None:
        return
    epoch = event.get("epoch")
    epoch = epoch if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else None
    position = 0
    for key, value in event.items():
        if key in ("t", "step", "kind"):
            continue
        position += 1
        routed = route(key, value)
        if routed is None:
            continue
        where, number = routed
        if where == "meta":
            history.meta[key] = number
        else:
            point = (line * 64 + min(position, 63), step, float(number), epoch)
            points.setdefault(target(where, key), []).append(point)


def build(history: History, parts: dict[tuple[str, str], list[tuple[Any, ...]]]) -> None:
    """Each series from its parts, in line order, normalised (sorted by step, the last write of a step
    kept), in the order the line reader creates them (first appearance)."""
    import numpy as np

    built = []
    for (where, key), chunks in parts.items():
        order = np.concatenate([c[0] for c in chunks])
        steps = np.concatenate([c[1] for c in chunks])
        values = np.concatenate([c[2] for c in chunks])
        epochs = np.concatenate([c[3] if c[3] is not None else np.zeros(len(c[0])) for c in chunks])
        has = np.concatenate(
            [c[4] if c[4] is not None else np.full(len(c[0]), c[3] is not None) for c in chunks]
        )
        if len(chunks) > 1:
            by_line = np.argsort(order, kind="stable")
            order, steps, values, epochs, has = (a[by_line] for a in (order, steps, values, epochs, has))
        keep = last_of_each_step(steps)
        if keep is not None:
            steps, values, epochs, has = steps[keep], values[keep], epochs[keep], has[keep]
        built.append((int(order[0]), where, key, steps, values, epochs, has))
    built.sort(key=lambda b: b[0])
    for _, where, key, *arrays in built:
        if where == "train":
            history.train = _series("loss", *arrays)
        elif where == "eval":
            history.evals[key] = _series(key, *arrays)
        else:
            history.metrics[key] = _series(key, *arrays)


def target(where: str, key: str) -> tuple[str, str]:
    """The series a routed key feeds: ``loss`` and ``train_loss_step`` both feed the one training loss."""
    return (where, "") if where == "train" else (where, key)


def _series(name: str, steps: Any, values: Any, epochs: Any, has: Any) -> Series:
    return Series.from_arrays(name, steps, values, epochs if has.any() else None, has)


@functools.cache
def _low() -> Any:
    """``_low()[k]``: the mask of a word's low k bytes."""
    import numpy as np

    return np.asarray([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
