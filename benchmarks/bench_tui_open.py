"""How long the TUI takes to open a run with a 1M-line event log (python benchmarks/bench_tui_open.py).

Measures (1) the data load the Live run screen does (run store readers → LiveState), (2) the
downsampled plot build, (3) the whole app headless: start → Live run screen with curves drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", default="", help="write the run here once and reuse it on later calls")
    args = parser.parse_args()
    from ehrdebug.runstore import open_run
    from ehrdebug.tui.model import LiveState, downsample

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test scaffolding lives there
    from tui_simulate import write_big_log

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "big-run"
        # (the log is written in bulk with the run store's own encoder; see tests/tui_simulate.py)
        t = time.perf_counter()
        if not (path / "events.jsonl").is_file():
            write_big_log(path, args.lines)
        size = (path / "events.jsonl").stat().st_size
        print(f"log of {args.lines:,} lines ({size / 1e6:.0f} MB) ready in {time.perf_counter() - t:.1f}s")

        t, c = time.perf_counter(), time.process_time()
        state = LiveState.from_run(open_run(path))
        load, cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"data load (events.jsonl → LiveState): {load:.2f}s wall, {cpu:.2f}s CPU, {len(state.history.train):,} train points"
        )

        t = time.perf_counter()
        xs, ys = downsample(*state.history.train.arrays(), 150)  # what the plot widget does
        print(f"downsample to {len(xs)} points: {time.perf_counter() - t:.2f}s")

        from ehrdebug.tui.app import EhrDebugApp

        async def run_app() -> tuple[float, float]:
            # timed from the app's creation: it starts reading the log then (tui/preload.py)
            start, cpu = time.perf_counter(), time.process_time()
            app = EhrDebugApp(path)
            async with app.run_test(size=(120, 40)) as pilot:
                while type(app.screen).__name__ != "LiveScreen" or app.screen.state is None:
                    await pilot.pause(0.01)
                plot = app.screen.query_one("#live-plot")
                # the loaded curves built, not the "no data yet" picture the screen first shows
                while plot._built_for is None or plot._version == 0 or plot._built_for[2] != plot._version:
                    await pilot.pause(0.01)
                return time.perf_counter() - start, time.process_time() - cpu

        total, cpu = asyncio.run(run_app())
        print(f"app start → Live run screen with curves drawn: {total:.2f}s wall, {cpu:.2f}s CPU")
        print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
