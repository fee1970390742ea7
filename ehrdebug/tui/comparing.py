"""What the Compare screen shows: config differences and final metrics (plain functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrdebug.runstore.history import History


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` → ``{'a.b': 1}``, for config differences."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = data
    return out


def config_differences(configs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Keys whose values differ between runs (missing counts as a difference), sorted by key."""
    flats = [flatten(c or {}) for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    missing = object()
    diffs = []
    for key in keys:
        values = [f.get(key, missing) for f in flats]
        if any(v != values[0] for v in values[1:]):
            diffs.append((key, [None if v is missing else v for v in values]))
    return diffs


def final_metrics(history: History) -> dict[str, float]:
    """Last train loss, best and last of each eval loss, last of each eval metric."""
    out: dict[str, float] = {}
    if history.train.values:
        out["train loss (last)"] = history.train.values[-1]
    for key, series in sorted(history.evals.items()):
        best = series.best("min")
        if best:
            out[f"{key} (best)"] = best[1]
        if series.values:
            out[f"{key} (last)"] = series.values[-1]
    for key, series in sorted(history.metrics.items()):
        if key.startswith("eval_") and series.values and not key.endswith(("runtime", "per_second")):
            out[f"{key} (last)"] = series.values[-1]
    return out
