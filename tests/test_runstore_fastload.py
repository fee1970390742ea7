"""The column-wise reader (fastload) gives exactly what the line reader gives, on every path it takes:
other events found by pyarrow row (no blank lines) or by the regex pass (blank lines), series read in
order or replayed by a resumed run, and the recent (t, step) pairs from the log's tail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.runstore.events import parse_lines
from ehrdebug.runstore.fastload import read_log
from ehrdebug.runstore.history import History


def _lines(n: int = 3000, resume_at: int | None = None) -> list[str]:
    out = [json.dumps({"t": 0.0, "step": 0, "kind": "status", "state": "started"}, separators=(",", ":"))]
    steps = list(range(1, n + 1))
    if resume_at:  # killed at n, resumed from resume_at: steps resume_at+1 .. n are written again
        steps += list(range(resume_at + 1, n + 1))
    for i, step in enumerate(steps):
        out.append(
            json.dumps(
                {
                    "t": 1.0 + i,
                    "step": step,
                    "kind": "train",
                    "loss": 3.0 / step + i * 1e-6,
                    "lr": 1e-4,
                    "epoch": step / 100,
                },
                separators=(",", ":"),
            )
        )
        if step % 100 == 0:
            out.append(
                json.dumps(
                    {"t": 1.0 + i, "step": step, "kind": "eval", "eval_loss": 2.0 / step},
                    separators=(",", ":"),
                )
            )
            out.append(
                json.dumps(
                    {
                        "t": 1.0 + i,
                        "step": step,
                        "kind": "finding",
                        "probe": "p",
                        "severity": "info",
                        "title": f"f{step}",
                        "evidence": {"kind": "train"},
                    },
                    separators=(",", ":"),
                )
            )
    return out


def _slow(path: Path) -> tuple[History, list[dict]]:
    h = History()
    other = []
    for e in parse_lines(path.read_text().splitlines()):
        if e["kind"] in ("train", "eval"):
            h.add_log(
                e["step"], {k: v for k, v in e.items() if k not in ("t", "step", "kind")}, e.get("epoch")
            )
        else:
            other.append(e)
    return h.normalized(), other


def _same(fast: History, slow: History) -> None:
    pairs = [(fast.train, slow.train)] + [(fast.evals[k], slow.evals[k]) for k in slow.evals]
    pairs += [(fast.metrics[k], slow.metrics[k]) for k in slow.metrics]
    assert set(fast.evals) == set(slow.evals) and set(fast.metrics) == set(slow.metrics)
    for a, b in pairs:
        assert (
            a.steps == b.steps and a.values == pytest.approx(b.values) and a.epochs == pytest.approx(b.epochs)
        )


@pytest.mark.parametrize("blank_lines", [False, True])
@pytest.mark.parametrize("resume_at", [None, 1500])
def test_fast_reader_matches_the_line_reader(
    tmp_path: Path, blank_lines: bool, resume_at: int | None
) -> None:
    lines = _lines(resume_at=resume_at)
    if blank_lines:  # rows no longer match lines: the regex pass must find the other events
        lines.insert(5, "")
        lines.insert(500, "   ")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + '\n{"t":9,"step":99999,"kind":"tra')  # a torn last line
    history, other, rate = read_log(path)
    slow, slow_other = _slow(path)
    _same(history, slow)
    assert other == slow_other and [e["title"] for e in other[1:3]] == ["f100", "f200"]
    events = [json.loads(x) for x in lines if x.strip()]
    train_tail = [(e["t"], e["step"]) for e in events if e["kind"] == "train"][-50:]
    assert len(rate) == 50 and rate == train_tail and rate[-1][1] == 3000
    if resume_at:
        assert history.train.steps == list(range(1, 3001))  # the replayed steps: the last write wins
        assert history.train.values[-1] == pytest.approx(3.0 / 3000 + (3000 + 1500 - 1) * 1e-6)


def test_series_arrays_convert_only_what_was_appended() -> None:
    import numpy as np

    h = History()
    for step in range(1, 1001):
        h.add_log(step, {"loss": 1.0 / step})
    steps, values = h.train.arrays()
    assert steps.tolist() == list(range(1, 1001)) and values[-1] == 1.0 / 1000
    again = h.train.arrays()
    assert again[0] is steps  # nothing appended: the cached arrays, no conversion
    h.add_log(1001, {"loss": 0.5})
    steps2, values2 = h.train.arrays()
    assert len(steps2) == 1001 and values2[-1] == 0.5 and np.shares_memory(steps2, steps) is False
    normalized = h.normalized().train  # a new list: converted afresh
    assert normalized.arrays()[1].tolist() == h.train.values
