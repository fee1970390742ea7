"""The Live run screen follows a run while another process appends to its event log."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ehrdebug.tui.app import EhrDebugApp


async def test_live_screen_follows_a_writer_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "live-run"
    writer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "tui_simulate.py"),
            str(run_dir),
            "--steps",
            "150",
            "--eval-every",
            "10",
            "--delay",
            "0.02",
            "--alert-at",
            "100",
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "events.jsonl").is_file():
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        app = EhrDebugApp(run_dir, follow_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            while type(app.screen).__name__ != "LiveScreen" or app.screen.state is None:
                await pilot.pause(0.05)
            live = app.screen
            first_seen = live.state.last_step
            tail = live.tail
            steps_seen = {first_seen}
            end = time.monotonic() + 60
            while live.state.state != "finished":
                assert time.monotonic() < end, f"stuck at step {live.state.last_step}"
                await pilot.pause(0.05)
                steps_seen.add(live.state.last_step)
            assert live.state.last_step == 150
            assert len(steps_seen) > 3  # it really moved while we watched, not one read at the end
            assert (
                live.tail is tail and tail.offset == (run_dir / "events.jsonl").stat().st_size
            )  # incremental reads only
            train = live.state.history.train
            assert train.steps == list(
                range(1, 151)
            )  # nothing lost or doubled between the first read and the tail
            assert [a["step"] for a in live.state.alerts] == [100]
            assert live.query_one("#live-plot").curves[0].steps[-1] == 150
    finally:
        writer.wait(30)
