"""Following a run rebuilds the plot only when curve points arrived, and at most every PLOT_EVERY seconds
while the same curves just grow (a rebuild is the dearest part of a follow tick); a finished run and a
key press redraw at once. Counted with the plot's build counter, not timed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ehrdebug.runstore.events import encode_event
from ehrdebug.tui.app import EhrDebugApp

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tui_simulate.py (test scaffolding)
from tui_simulate import write_big_log  # noqa: E402


async def _until(pilot, cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.02)


async def test_follow_rebuilds_the_plot_only_for_new_points_and_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ehrdebug.tui.screens.live as live_mod

    monkeypatch.setattr(live_mod, "PLOT_EVERY", 0.6)
    run = write_big_log(tmp_path / "run", 2000)  # open-ended: its last status is "started"
    events = run / "events.jsonl"
    app = EhrDebugApp(run, follow_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(
            pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None
        )
        live = app.screen
        plot = live.query_one("#live-plot")
        await _until(pilot, lambda: plot.builds >= 1 and plot._built_for[2] == plot._version)

        # ticks with nothing written: no rebuild at all
        builds, ticks = plot.builds, live.ticks
        await _until(pilot, lambda: live.ticks >= ticks + 10)
        assert plot.builds == builds

        # one train line per tick for a while: the plot is rebuilt a few times, not once per tick
        step, seen = 1999, set()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            step += 1
            with open(events, "a", encoding="utf-8") as fh:
                fh.write(encode_event("train", step, {"loss": 0.01, "lr": 1e-4, "epoch": step / 1000}))
            await pilot.pause(0.05)
            seen.add(live.state.last_step)
        await _until(pilot, lambda: live.state.last_step == step)
        assert len(seen) >= 10  # that many ticks brought new points (each one a rebuild before)
        assert 1 <= plot.builds - builds <= 5

        # the newest points are drawn within PLOT_EVERY even when nothing more arrives
        await _until(
            pilot, lambda: plot.curves[0].steps[-1] == step and plot._built_for[2] == plot._version, 5
        )
        assert live.query_one("#live-plot").curves[0].steps[-1] == step

        # a finished run is drawn at once, whatever the throttle says
        monkeypatch.setattr(live_mod, "PLOT_EVERY", 3600.0)
        builds = plot.builds
        with open(events, "a", encoding="utf-8") as fh:
            fh.write(encode_event("train", step + 1, {"loss": 0.01, "lr": 1e-4, "epoch": step / 1000}))
            fh.write(encode_event("status", step + 1, {"state": "finished"}))
        await _until(pilot, lambda: live.state.state == "finished", 5)
        await _until(pilot, lambda: plot.builds > builds, 5)
        assert plot.curves[0].steps[-1] == step + 1

        # a key press (next view) redraws at once too
        builds = plot.builds
        await pilot.press("m")
        await _until(pilot, lambda: plot.builds > builds, 5)
        assert plot.curves[0].label == "lr"
