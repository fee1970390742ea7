"""Opening one run: the log is read when the app is created (before Textual starts; a very large one aside), handed to the
Live run screen once, followed from exactly where the read ended, and shown without building the
million-item Python lists the screen does not need."""

from __future__ import annotations

import sys
from pathlib import Path

from ehrdebug.runstore.events import encode_event
from ehrdebug.tui.app import EhrDebugApp
from ehrdebug.tui.model import LiveState
from ehrdebug.tui.preload import FirstRead, read_live

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tui_simulate.py (test scaffolding)
from tui_simulate import write_big_log, write_run  # noqa: E402


async def _live(app: EhrDebugApp, pilot) -> object:  # noqa: ANN001
    while type(app.screen).__name__ != "LiveScreen" or app.screen.state is None:
        await pilot.pause(0.02)
    return app.screen


async def test_the_first_read_starts_with_the_app_and_the_screen_takes_it(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", steps=120, eval_every=10)
    app = EhrDebugApp(run_dir, follow_interval=0.1)
    assert isinstance(app.first_read, FirstRead)  # started before Textual built anything
    async with app.run_test(size=(100, 30)) as pilot:
        live = await _live(app, pilot)
        assert app.first_read.take(live.run) is None  # handed over once: a re-read reads the file again
        again = LiveState.from_run(live.run)
        assert live.state.history == again.history and live.state.last_step == again.last_step == 120
        assert live.tail.offset == (run_dir / "events.jsonl").stat().st_size == live.state.read_end
    folder = EhrDebugApp(tmp_path)  # a folder of runs: nothing to read before the list is shown
    assert folder.first_read is None


async def test_a_line_half_written_at_open_is_followed_not_lost(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "torn", steps=50, eval_every=10, finish=False)
    events = run_dir / "events.jsonl"
    line = encode_event("train", 51, {"loss": 0.25, "lr": 1e-5, "epoch": 1.0}, t=10.0)
    with open(events, "a") as fh:
        fh.write(line[:20])  # the writer is mid-line when the TUI opens the run
    app = EhrDebugApp(run_dir, follow_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        live = await _live(app, pilot)
        assert live.state.last_step == 50 and live.state.read_end == events.stat().st_size - 20
        with open(events, "a") as fh:
            fh.write(line[20:] + encode_event("train", 52, {"loss": 0.2, "lr": 1e-5, "epoch": 1.02}, t=11.0))
        for _ in range(200):
            if live.state.last_step == 52:
                break
            await pilot.pause(0.05)
        train = live.state.history.train
        assert train.steps[-3:] == [50, 51, 52] and train.values[-2] == 0.25  # the torn line, once


async def test_a_big_log_is_shown_without_building_its_lists(tmp_path: Path) -> None:
    run_dir = write_big_log(tmp_path / "big", lines=60_000, eval_every=100)
    state, tail = read_live(EhrDebugApp(run_dir).first_read.run)
    train = state.history.train
    assert len(train) == 60_000 - 1 - 599 and state.last_step == 59_999 and tail.offset == state.read_end
    assert train._base_values is not None and train._base_steps is not None  # arrays, no lists yet
    app = EhrDebugApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        live = await _live(app, pilot)
        plot = live.query_one("#live-plot")
        while plot._built_for is None or plot._built_for[2] != plot._version or plot._version == 0:
            await pilot.pause(0.02)
        shown = live.state.history
        assert shown.train._base_values is not None and shown.evals["eval_loss"]._base_values is not None
        assert (
            plot.curves[0].steps[-1] == 59_999 and dict(live.state.summary_lines())["step"] == "59999/60000"
        )


def test_a_log_up_to_the_limit_is_read_before_textual_starts_a_larger_one_in_a_thread(tmp_path: Path) -> None:
    """Overlapping the read with Textual's start costs more than it saves (GIL contention, tui/preload.py):
    a log up to SYNC_BYTES is read when the app is created; above it the app shows at once and reads aside."""
    run_dir = write_run(tmp_path / "run", steps=80, eval_every=10)
    app = EhrDebugApp(run_dir)
    assert app.first_read._done.is_set()  # read already, synchronously
    run = app.first_read.run
    aside = FirstRead(run, sync_bytes=0)  # as if the log were larger than the limit
    state, tail = aside.take(run)
    assert aside._done.is_set()
    assert state.history == LiveState.from_run(run).history and tail.offset == state.read_end
    assert aside.take(run) is None  # handed over once
