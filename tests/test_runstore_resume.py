"""Resuming a run log (issue 15): the ``resumed`` event starts on a fresh line after a torn last line, a
stray event with a non-integer step neither crashes resume nor half-writes run.json, and the ``resumed``
event carries the step of the checkpoint resumed from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from ehrdebug.runstore import RunLogger, open_run
from ehrdebug.runstore.reader import read_events


def _run(tmp_path: Path, steps: int = 5) -> Path:
    run = tmp_path / "run"
    with RunLogger(run, {"lr": 1e-3}, architecture="tiny") as logger:
        for step in range(1, steps + 1):
            logger.log_train(step, loss=1.0 / step)
    return run


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_after_a_torn_last_line_starts_on_a_fresh_line(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with open(run / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"t":1,"step":6,"kind":"train","lo')  # killed mid-write
    logger = RunLogger(run, resume=True, resumed_from_step=4)
    logger.log_train(5, loss=0.3)
    logger.finish()
    lines = (run / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[-4] == '{"t":1,"step":6,"kind":"train","lo'  # the fragment stays alone on its line
    events = read_events(run / "events.jsonl")
    resumed = [e for e in events if e.get("state") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 4
    assert resumed[0]["resumed_from_step"] == 4 and resumed[0]["last_logged_step"] == 5
    assert [e["step"] for e in events if e["kind"] == "train"][-1] == 5
    assert open_run(run).status == "finished"


def test_resume_with_a_non_integer_step_in_the_log(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with open(run / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"t":1,"step":"abc","kind":"train","loss":1.0}\n{"t":1,"step":2.5,"kind":"alert"}\n'
                 '{"t":1,"step":true,"kind":"alert"}\n')
    logger = RunLogger(run, resume=True)
    logger.finish()
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert len(info["resumes"]) == 1 and info["resumes"][0]["last_logged_step"] == 5
    resumed = [e for e in read_events(run / "events.jsonl") if e.get("state") == "resumed"]
    assert resumed[0]["step"] == 5 and resumed[0]["resumed_from_step"] is None  # none given: the last logged


def test_a_refused_resume_writes_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path)
    before = {p.name: _digest(p) for p in (run / "run.json", run / "events.jsonl")}
    with pytest.raises(UserError, match="whole number"):
        RunLogger(run, resume=True, resumed_from_step="3")  # type: ignore[arg-type]
    (run / "run.json").write_text("[1, 2]", encoding="utf-8")
    before["run.json"] = _digest(run / "run.json")
    with pytest.raises(UserError, match="not a JSON object"):
        RunLogger(run, resume=True)
    assert {p.name: _digest(p) for p in (run / "run.json", run / "events.jsonl")} == before


def test_events_log_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "events.jsonl").mkdir(parents=True)
    with pytest.raises(UserError, match="not a file"):
        RunLogger(run, resume=True)
    with pytest.raises(UserError, match="events.jsonl is not a file"):
        open_run(run)


def test_a_broken_run_does_not_hide_the_others(tmp_path: Path) -> None:
    from ehrdebug.runstore import discover_runs

    good = _run(tmp_path)
    (tmp_path / "broken" / "events.jsonl").mkdir(parents=True)
    (tmp_path / "broken_info" / "run.json").mkdir(parents=True)
    assert [r.path for r in discover_runs(tmp_path)] == [good]
    with pytest.raises(UserError, match="run.json is not a file"):
        open_run(tmp_path / "broken_info")
