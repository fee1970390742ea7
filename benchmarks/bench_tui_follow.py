"""CPU the TUI spends following a live run (python benchmarks/bench_tui_follow.py).

A separate writer process appends train events (and an eval every 50 steps) at ``--rate`` lines per
second to a run that already holds ``--existing`` lines; the app runs headless on the Live run screen
with its default 1 s follow interval. Reported: the app process's CPU time / wall time, while the run is
written and while it is idle, and how far behind the writer the screen was at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = """
import sys, time
from ehrdebug.runstore.events import encode_event
path, rate, seconds, start = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
end = time.time() + seconds
step = start
with open(path, "a", encoding="utf-8") as fh:
    while time.time() < end:
        step += 1
        fh.write(encode_event("train", step, {"loss": 1.0 / step, "lr": 1e-4, "epoch": step / 1000}))
        if step % 50 == 0:
            fh.write(encode_event("eval", step, {"eval_loss": 1.1 / step}))
        fh.flush()
        time.sleep(1.0 / rate)
print(step)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    from ehrdebug.tui.app import EhrDebugApp

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test scaffolding lives there
    from tui_simulate import write_big_log

    with tempfile.TemporaryDirectory() as tmp:
        path = write_big_log(Path(tmp) / "live", args.existing)
        events = path / "events.jsonl"

        async def run() -> None:
            app = EhrDebugApp(path, follow_interval=1.0)
            async with app.run_test(size=(120, 40)) as pilot:
                while type(app.screen).__name__ != "LiveScreen" or app.screen.state is None:
                    await pilot.pause(0.05)
                live = app.screen
                await pilot.pause(1.0)
                c0, t0 = time.process_time(), time.perf_counter()
                await asyncio.sleep(args.seconds / 2)
                idle = (time.process_time() - c0) / (time.perf_counter() - t0)
                writer = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WRITER,
                        str(events),
                        str(args.rate),
                        str(args.seconds),
                        str(args.existing),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                c0, t0 = time.process_time(), time.perf_counter()
                await asyncio.sleep(args.seconds)
                busy = (time.process_time() - c0) / (time.perf_counter() - t0)
                last = int(writer.communicate()[0].strip() or 0)
                await pilot.pause(1.5)
                print(f"idle (nothing written): {100 * idle:.1f}% of one core")
                print(
                    f"following {args.rate:.0f} lines/s on top of {args.existing:,} lines: {100 * busy:.1f}% of one core"
                )
                print(
                    f"writer reached step {last}, screen shows step {live.state.last_step} "
                    f"(tail offset {live.tail.offset:,} of {events.stat().st_size:,} bytes)"
                )
                plot = live.query_one("#live-plot")
                print(
                    f"plot builds: {plot.builds}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
                )

        asyncio.run(run())


if __name__ == "__main__":
    main()
