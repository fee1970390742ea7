"""Byte-level pieces of the compact reader (``runstore.compact``): where a line's words lie, what the first
bytes of a JSON number may be, and the one pass over the log that finds every ``:`` and newline."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

KIND_VALUE = {"train": b'"train",', "eval": b'"eval",'}


def is_curve_kind(word: Any) -> Any:
    """Which 8-byte words (the bytes after ``"kind":``) start a train or an eval kind."""
    import numpy as np

    train, evals = (np.uint64(int.from_bytes(v, "little")) for v in KIND_VALUE.values())
    return (word == train) | ((word & np.uint64((1 << 56) - 1)) == evals)


@dataclass(frozen=True)
class _Shape:
    """Where, for one shape of line, the words to read lie (``anchor column + offset``: anchors are each
    ':', then the line's start and end), which of them must hold which literal bytes, and where step and
    each value start and end, which word holds their first 8 bytes and which their last byte."""

    word_at: Any
    word_off: Any
    check: Any
    mask: Any
    want: Any
    gap: int
    start_at: Any
    start_off: Any
    end_at: Any
    end_off: Any
    first: Any
    last: Any


@functools.cache
def shape_of(n: int, kind: str, keys: tuple[str, ...]) -> _Shape:
    import numpy as np

    words: list[tuple[int, int]] = []
    checks: list[tuple[int, bytes]] = []

    def word(at: int, offset: int, literal: bytes = b"") -> int:
        words.append((at, offset))
        if literal:
            checks.append((len(words) - 1, literal))
        return len(words) - 1

    start, end = n, n + 1
    word(start, 0, b'{"t":')
    step_key = word(1, -8, b'?,"step"')
    word(2, -8, b'?,"kind"')
    word(2, 1, KIND_VALUE[kind])
    key_word = []
    for j, key in enumerate(keys):
        literal = b'?,"' + key.encode() + b'"'
        key_word.append(word(3 + j, -len(key) - 4, literal[:8]))
        for i in range(8, len(literal), 8):
            word(3 + j, -len(key) - 4 + i, literal[i : i + 8])
    close = word(end, -2, b"?}")
    first = [word(1, 1)] + [word(3 + j, 1) for j in range(len(keys))]
    last = [step_key] + key_word[1:] + [close]
    ends = [(2, -7)] + [(4 + j, -len(keys[j + 1]) - 3) for j in range(len(keys) - 1)] + [(end, -1)]
    masks = [sum(0xFF << (8 * i) for i, c in enumerate(lit) if c != ord("?")) for _, lit in checks]
    wants = [sum(c << (8 * i) for i, c in enumerate(lit) if c != ord("?")) for _, lit in checks]
    return _Shape(
        word_at=np.asarray([w[0] for w in words]),
        word_off=np.asarray([w[1] for w in words], dtype=np.int64),
        check=np.asarray([c[0] for c in checks]),
        mask=np.asarray(masks, dtype=np.uint64),
        want=np.asarray(wants, dtype=np.uint64),
        gap=len(keys[0]) + 3 + len(KIND_VALUE[kind]),
        start_at=np.asarray([1] + [3 + j for j in range(len(keys))]),
        start_off=np.ones(len(keys) + 1, dtype=np.int64),
        end_at=np.asarray([e[0] for e in ends]),
        end_off=np.asarray([e[1] for e in ends], dtype=np.int64),
        first=np.asarray(first),
        last=np.asarray(last),
    )


@functools.cache
def _starts() -> Any:
    """What the first two bytes of a JSON number say (indexed by them as a little-endian uint16): 1 a
    valid start, 2 ``-0`` (valid unless a digit follows), 3 maybe ``NaN``/``Infinity``/``-Infinity``, 0 not
    a number (a quote, a letter, a leading zero, ``+``, ``.``)."""
    import numpy as np

    pairs = np.arange(1 << 16)
    b0, b1 = pairs & 0xFF, pairs >> 8
    digit1, nonzero1 = (b1 >= ord("0")) & (b1 <= ord("9")), (b1 >= ord("1")) & (b1 <= ord("9"))
    table = np.zeros(1 << 16, dtype=np.uint8)
    table[(b0 >= ord("1")) & (b0 <= ord("9"))] = 1
    table[(b0 == ord("0")) & ~digit1] = 1
    minus = b0 == ord("-")
    table[minus & nonzero1] = 1
    table[minus & (b1 == ord("0"))] = 2
    table[
        (minus & (b1 == ord("I")))
        | ((b0 == ord("N")) & (b1 == ord("a")))
        | ((b0 == ord("I")) & (b1 == ord("n")))
    ] = 3
    return table


def json_numbers(length: Any, first: Any, last: Any) -> Any:
    """Which values (columns: the step, then the values) are JSON numbers, from their length, first 8
    bytes and last byte: what Arrow's cast would read but JSON not (a leading zero, ``+1``, ``.5``, ``1.``,
    ``nan``) is refused here; Arrow checks the bytes between. The step must be an integer."""
    code = _starts()[first & 0xFFFF]
    ok = (code == 1) | ((code == 2) & ((((first >> 16) & 0xFF) - 48) >= 10))
    ok &= ((last - 48) < 10) & (length >= 1) & (length <= 40)
    ok[:, 0] &= length[:, 0] <= 20
    special = code == 3
    special[:, 0] = False
    if special.any():
        named = (length == 3) & ((first & 0xFFFFFF) == _word(b"NaN"))
        named |= (length == 8) & (first == _word(b"Infinity"))
        named |= (length == 9) & (first == _word(b"-Infinit")) & (last == ord("y"))
        ok |= special & named
    return ok


def _word(text: bytes) -> Any:
    import numpy as np

    return np.uint64(int.from_bytes(text, "little"))


def scan(body: Any, chunk: int = 1 << 18, threads: int = 1) -> tuple[Any, Any]:
    """Positions of every ':' and newline in order, and the indices of the newlines among them (in
    cache-sized chunks: twice as fast as on the whole log at once; ``threads`` parts side by side, since
    numpy releases the GIL)."""
    import numpy as np

    parts = max(1, min(threads, len(body) // (4 * chunk)))
    if parts > 1:
        from concurrent.futures import ThreadPoolExecutor

        bounds = [len(body) * i // parts // chunk * chunk for i in range(parts)] + [len(body)]
        with ThreadPoolExecutor(parts, thread_name_prefix="ehrdebug-scan") as pool:
            done = list(pool.map(lambda i: scan(body[bounds[i] : bounds[i + 1]], chunk), range(parts)))
        found, newlines, before = [], [], 0
        for i, (hits, lines) in enumerate(done):
            found.append(hits + bounds[i])
            newlines.append(lines + before)
            before += len(hits)
        return np.concatenate(found), np.concatenate(newlines)

    found, newlines = [], []
    colon, newline = np.empty(chunk, dtype=bool), np.empty(chunk, dtype=bool)
    done = 0
    for at in range(0, len(body), chunk):
        part = body[at : at + chunk]
        a, b = colon[: len(part)], newline[: len(part)]
        np.equal(part, 58, out=a)
        np.equal(part, 10, out=b)
        np.logical_or(a, b, out=a)
        hits = np.flatnonzero(a)
        newlines.append(np.flatnonzero(part[hits] == 10) + done)
        found.append(hits + at)
        done += len(hits)
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(found), np.concatenate(newlines)
