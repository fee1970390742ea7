"""Small, dependency-free statistics the curve probes share (medians, robust z-scores, tails).

Loss curves are short (tens to a few thousand points) and noisy; medians over a few points are the
smoothing of choice because one bad batch or one lucky evaluation must not move a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Projection:
    """What a fit of a loss curve's last points says is left to gain by training longer.

    Two shapes are fitted to the recent evaluations and the closer one kept: exponential decay to a floor
    (``floor + a * rate**evaluations``) and a power law in steps (``floor + a * step**-p``, the usual shape
    of a long loss tail). Fitting only the recent points keeps an early steep drop from reading as a
    curve that is still falling fast.
    """

    model: str  # "exponential" or "power law"
    points: int  # evaluations fitted
    interval: float  # median steps between them
    last_fitted: float  # the fit at the last evaluation
    floor: float  # the level the curve approaches
    remaining_share: float  # (last_fitted - floor) / last_fitted: everything left, however long it takes
    next_fall: float  # relative fall the next evaluation would likely bring
    gain_soon: float  # relative fall over the next ``points`` evaluations (as many as were fitted)
    evaluations_to_90: float | None  # evaluations to realise 90% of what is left (None: no end in sight)
    steps_to_90: int | None
    epochs_to_90: float | None

    def as_evidence(self) -> dict[str, object]:
        return {
            "projection_model": self.model,
            "fitted_evaluations": self.points,
            "projected_floor": rounded(self.floor),
            "estimated_remaining_share": rounded(self.remaining_share, 3),
            "next_evaluation_fall": rounded(self.next_fall, 3),
            f"fall_over_next_{self.points}_evaluations": rounded(self.gain_soon, 3),
            "evaluations_to_90pct_of_it": rounded(self.evaluations_to_90, 3),
            "steps_to_90pct_of_it": self.steps_to_90,
            "epochs_to_90pct_of_it": rounded(self.epochs_to_90, 3),
        }

    def describe(self) -> str:
        soon = f"~{self.gain_soon:.1%} lower over the next {self.points} evaluations"
        if self.evaluations_to_90 is None:
            return f"{soon}, no floor in sight"
        more = f"~{math.ceil(self.evaluations_to_90)} more evaluations"
        if self.steps_to_90:
            more += f", ~{self.steps_to_90} steps" + (f", ~{self.epochs_to_90:.2g} epochs" if self.epochs_to_90 else "")
        return f"{soon}; ~{self.remaining_share:.1%} left in all (floor ~{self.floor:.4g}), 90% of it in {more}"


_RATES = [i / 200 for i in range(1, 200)]  # exponential: per-evaluation decay 0.005 … 0.995
_POWERS = [i / 20 for i in range(1, 61)]  # power law: exponent 0.05 … 3


def _fit_floor(x: Sequence[float], v: Sequence[float], w: Sequence[float]) -> tuple[float, float, float]:
    """Weighted least squares of v = c + a * x with c >= 0 (a loss has no level below zero): (c, a, error)."""
    sw = sum(w)
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sw
    mv = sum(wi * vi for wi, vi in zip(w, v, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    a = sum(wi * (xi - mx) * (vi - mv) for wi, xi, vi in zip(w, x, v, strict=True)) / sxx if sxx > 0 else 0.0
    c = mv - a * mx
    if c < 0:
        sxx0 = sum(wi * xi * xi for wi, xi in zip(w, x, strict=True))
        a = sum(wi * xi * vi for wi, xi, vi in zip(w, x, v, strict=True)) / sxx0 if sxx0 > 0 else 0.0
        c = 0.0
    err = sum(wi * (c + a * xi - vi) ** 2 for wi, xi, vi in zip(w, x, v, strict=True))
    return c, a, err


def project_decay(steps: Sequence[float], values: Sequence[float], window: int = 5,
                  epochs: Sequence[float | None] | None = None) -> Projection | None:
    """How much further a (loss) curve would likely go, from its last ``window`` points.

    None with fewer than 3 finite points (three fix a decay and its floor). A curve that is not falling gets a projection of no gain.
    Shared by the undertrained probe and anything that must say what training longer would buy.
    """
    pts = [(s, v, (epochs[i] if epochs and i < len(epochs) else None))
           for i, (s, v) in enumerate(zip(steps, values, strict=False)) if math.isfinite(v)][-window:]
    if len(pts) < 3:
        return None
    n = len(pts)
    interval = median([b[0] - a[0] for a, b in zip(pts, pts[1:], strict=False)]) or 1.0
    last = pts[-1][0]
    v = [val for _, val, _ in pts]
    w = [float(i + 1) for i in range(n)]  # the recent points weigh most: it is the end that is judged
    fits: list[tuple[float, str, float, float, float]] = []  # (error, model, shape, floor, amplitude)
    for rate in _RATES:
        c, a, err = _fit_floor([rate ** ((s - last) / interval) for s, _, _ in pts], v, w)
        fits.append((err, "exponential", rate, c, a))
    if pts[0][0] > 0:
        for p in _POWERS:
            c, a, err = _fit_floor([(s / last) ** -p for s, _, _ in pts], v, w)
            fits.append((err, "power law", p, c, a))
    falling = [f for f in fits if f[4] > 0]
    if not falling:
        return Projection("flat", n, interval, v[-1], v[-1], 0.0, 0.0, 0.0, 0.0, 0, 0.0)
    _, model, shape, floor, amp = min(falling)

    def at(k: float) -> float:  # the fit k evaluations after the last one
        if model == "exponential":
            return floor + amp * shape**k
        return floor + amp * ((last + k * interval) / last) ** -shape

    fitted = floor + amp
    if model == "exponential":
        to_90 = math.log(0.1) / math.log(shape) if shape < _RATES[-1] else None
    else:  # amp * (t/last)^-p falls to a tenth at t = last * 10^(1/p)
        to_90 = (last * 10 ** (1 / shape) - last) / interval if shape >= _POWERS[0] * 4 else None
    e = [ep for _, _, ep in pts]
    per_step = ((e[-1] - e[0]) / (last - pts[0][0]) if all(x is not None for x in e) and e[-1] > e[0] else None)
    steps_90 = int(round(to_90 * interval)) if to_90 is not None else None
    return Projection(
        model=model, points=n, interval=interval, last_fitted=fitted, floor=floor,
        remaining_share=amp / fitted if fitted > 0 else 0.0,
        next_fall=(fitted - at(1)) / fitted if fitted > 0 else 0.0,
        gain_soon=(fitted - at(n)) / fitted if fitted > 0 else 0.0,
        evaluations_to_90=to_90, steps_to_90=steps_90,
        epochs_to_90=steps_90 * per_step if steps_90 is not None and per_step else None,
    )
