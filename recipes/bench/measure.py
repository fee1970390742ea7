"""Wall time and peak memory of one model's training, measured from outside the recipe.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (reset before the model starts); on a CPU the
process's peak resident set size while the model trained, sampled with psutil every 50 ms (``rss``),
with the RSS before it started beside it, since a process's RSS includes what earlier models and the
imports left behind. CPU seconds: the process's user + system time over all its threads while the model
trained (``time.process_time``): unlike wall time, it barely moves when other work shares the cores.
Saved as ``artifacts/resources.json`` in the model's run directory.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

MB = 1024 * 1024


class Measure:
    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.result: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak = 0

    def _sample(self, process: Any) -> None:
        while not self._stop.is_set():
            try:
                self._peak = max(self._peak, process.memory_info().rss)
            except Exception:  # noqa: BLE001 - a failed sample must never break training
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> Measure:
        import psutil

        process = psutil.Process()
        self._before = process.memory_info().rss
        self._peak = self._before
        self._cuda = _cuda_reset()
        self._start = time.perf_counter()
        self._cpu = time.process_time()
        self._thread = threading.Thread(target=self._sample, args=(process,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self.result = {"wall_seconds": round(time.perf_counter() - self._start, 3),
                       "cpu_seconds": round(time.process_time() - self._cpu, 3),
                       "rss_before_mb": round(self._before / MB, 1), "peak_rss_mb": round(self._peak / MB, 1),
                       "rss_growth_mb": round((self._peak - self._before) / MB, 1)}  # fmt: skip
        if self._cuda:
            import torch

            self.result.update(
                peak_memory_mb=round(torch.cuda.max_memory_allocated() / MB, 1), memory_source="cuda"
            )
        else:
            self.result.update(peak_memory_mb=self.result["peak_rss_mb"], memory_source="rss")

    def save(self, run_dir: Path) -> None:
        from recipes.bench.runinfo import RESOURCES

        path = run_dir / "artifacts" / RESOURCES
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.result, indent=2) + "\n", encoding="utf-8")


def _cuda_reset() -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    torch.cuda.reset_peak_memory_stats()
    return True
