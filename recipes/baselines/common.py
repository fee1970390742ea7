"""What every baseline recipe shares: a fresh run directory, its ``RunLogger`` and the final artifacts.

A baseline writes the same run directory as the training loop (docs/run-format.md): ``run.json``,
``events.jsonl`` with train/eval losses, ``checkpoints/step-N/`` (the model artifact),
``artifacts/metrics_summary.json`` with a ``test`` block (``test_auroc``, ``test_auprc``, ``test_f1`` and
``test_ci`` bootstrap intervals) and ``artifacts/summary.md`` with its plots, so ``ehrdebug doctor``,
``compare``, ``bench`` and ``pack`` read it like any other run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError


def check_out_dir(run_dir: Path) -> None:
    """Nothing the user had is overwritten: the folder must be new or empty."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"out={run_dir} is a file; choose a new out= folder")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise UserError(
            f"out={run_dir} is not empty; choose a new or empty folder (nothing in it is overwritten)"
        )


def open_logger(
    config: dict[str, Any], run_dir: Path, architecture: str, task: Any, files: dict[str, str]
) -> Any:
    from ehrdebug.runstore import RunLogger

    check_out_dir(run_dir)
    return RunLogger(run_dir, config, architecture=architecture, size=config["size"], task=task.name, data=files,
                     tokenizer="checkpoints (each step-N holds the model's code vocabulary)",
                     extra={"recipe": config["recipe"], "baseline": True, "device": config["device"], "label_field": config["label_field"]})  # fmt: skip


def parameter_info(total: int, trainable: int | None = None) -> dict[str, Any]:
    trainable = total if trainable is None else trainable
    return {
        "total": int(total),
        "trainable": int(trainable),
        "share": float(trainable / total) if total else 0.0,
    }


def finish_run(
    log: Any, run_dir: Path, summary: dict[str, Any], history: dict[str, list[dict[str, Any]]]
) -> Path:
    """``artifacts/metrics_summary.json`` (with the history), the final status event, then the run's
    markdown summary with plots (written last, so it reports the run as finished)."""
    from recipes.bench.run_summary import write_run_summary

    out = run_dir / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics_summary.json"
    path.write_text(
        json.dumps({**summary, "history": history}, indent=2, default=str) + "\n", encoding="utf-8"
    )
    log.finish("finished", **status_figures(summary))
    write_run_summary(run_dir)
    return path


def status_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The scalar test figures the final ``status`` event carries (what ``ehrdebug report RUN`` shows)."""
    return {k: v for k, v in (summary.get("test") or {}).items() if isinstance(v, (int, float))}


class Clock:
    """Wall-clock training time, measured around the fitting only (not data loading or the final test)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: float | None = None

    def __enter__(self) -> Clock:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds += time.perf_counter() - (self._start or time.perf_counter())
