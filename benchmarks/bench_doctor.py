"""How long `ehrdebug doctor` takes on a small checkpoint on CPU (the issue asks for well under a minute).

Trains a short BART small run on the shipped data (the shipped tiny base, 40 steps), then times the
whole `ehrdebug doctor RUN` command in a fresh process, as a user would run it, several times.

    python benchmarks/bench_doctor.py [--repeat 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        config = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml",
                             [f"max_steps={args.steps}", f"eval_every={args.steps}", f"out={run}",
                              "num_eval_generations=4", "num_test_generations=4"])
        start = time.perf_counter()
        run_training(config)
        print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s -> {run}")
        times = []
        for i in range(args.repeat):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "ehrdebug", "doctor", str(run), "--format", "json"],
                                 capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            print(f"doctor run {i + 1}: {times[-1]:.1f} s (exit {out.returncode})")
        cores = len(__import__("os").sched_getaffinity(0))
        print(f"ehrdebug doctor on a small BART checkpoint, {cores} cores: median {statistics.median(times):.1f} s, "
              f"min {min(times):.1f} s, max {max(times):.1f} s (budget: 60 s)")


if __name__ == "__main__":
    main()
