"""How long the TUI takes to open a run with a 1M-line event log (python benchmarks/bench_tui_open.py).

Measures (1) the data load the Live run screen does (run store readers → LiveState), (2) the
downsampled plot build, (3) the whole app headless: start → Live run screen with curves drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    from ehrdebug.runstore import open_run
    from ehrdebug.tui.model import LiveState, downsample
    from ehrdebug.tui.simulate import write_big_log

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big-run"
        t = time.perf_counter()
        write_big_log(path, args.lines)
        size = (path / "events.jsonl").stat().st_size
        print(f"wrote {args.lines:,} lines ({size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")

        t = time.perf_counter()
        state = LiveState.from_run(open_run(path))
        load = time.perf_counter() - t
        print(f"data load (run store → LiveState): {load:.2f}s, {len(state.history.train):,} train points")

        t = time.perf_counter()
        xs, ys = downsample(state.history.train.steps, state.history.train.values, 150)
        print(f"downsample to {len(xs)} points: {time.perf_counter() - t:.2f}s")

        from ehrdebug.tui.app import EhrDebugApp

        async def run_app() -> float:
            app = EhrDebugApp(path)
            start = time.perf_counter()
            async with app.run_test(size=(120, 40)) as pilot:
                while type(app.screen).__name__ != "LiveScreen" or app.screen.state is None:
                    await pilot.pause(0.01)
                plot = app.screen.query_one("#live-plot")
                while plot._cached is None:
                    await pilot.pause(0.01)
                return time.perf_counter() - start

        total = asyncio.run(run_app())
        print(f"app start → Live run screen with curves drawn: {total:.2f}s")


if __name__ == "__main__":
    main()
