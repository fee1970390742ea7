"""Small, dependency-free statistics the curve probes share (medians, robust z-scores, tails).

Loss curves are short (tens to a few thousand points) and noisy; medians over a few points are the
smoothing of choice because one bad batch or one lucky evaluation must not move a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ehrdebug.runstore.history import History, Series


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def head_level(values: Sequence[float], k: int = 3) -> float:
    """Median of the first ``k`` points: where the curve started."""
    return median(values[:k])


def tail_level(values: Sequence[float], k: int = 3) -> float:
    """Median of the last ``k`` points: where the curve ended, robust to one last bump."""
    return median(values[-k:])


def centered_median(values: Sequence[float], window: int = 3) -> list[float]:
    """Centered rolling median; the window shrinks at the edges."""
    half = window // 2
    return [median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]


def finite_pairs(series: Series) -> tuple[list[int], list[float]]:
    steps = [s for s, v in zip(series.steps, series.values, strict=False) if math.isfinite(v)]
    values = [v for v in series.values if math.isfinite(v)]
    return steps, values


def non_finite(series: Series) -> list[tuple[int, float]]:
    return [(s, v) for s, v in zip(series.steps, series.values, strict=False) if not math.isfinite(v)]


def value_at(series: Series, step: int) -> float | None:
    """The last finite value logged at or before ``step`` (the train loss when an eval happened)."""
    found = None
    for s, v in zip(series.steps, series.values, strict=False):
        if s > step:
            break
        if math.isfinite(v):
            found = v
    return found


def robust_z(values: Sequence[float]) -> list[float]:
    """(x - median) / (1.4826 * MAD); a zero MAD falls back to the mean absolute deviation."""
    if not values:
        return []
    mid = median(values)
    dev = [abs(v - mid) for v in values]
    scale = 1.4826 * median(dev)
    if scale <= 0:
        scale = sum(dev) / len(dev) or 1e-12
    return [(v - mid) / scale for v in values]


def rank_trend(steps: Sequence[float], values: Sequence[float]) -> float:
    """Kendall's tau between step and value: +1 steadily rising, -1 steadily falling, ~0 noise."""
    n = len(values)
    if n < 2:
        return 0.0
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            d = (steps[j] - steps[i]) * (values[j] - values[i])
            if d > 0:
                concordant += 1
            elif d < 0:
                discordant += 1
    total = n * (n - 1) / 2
    return (concordant - discordant) / total


def rounded(value: float | None, digits: int = 5) -> float | None:
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def prepared(history: History) -> History:
    """Sorted, deduplicated copy (a resumed run replays steps; the last write wins)."""
    return history.normalized()
