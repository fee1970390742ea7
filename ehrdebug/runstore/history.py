"""Training history in one shape, whatever wrote it (an ehrdebug run or an HF trainer_state.json).

Curve probes take a ``History`` and nothing else, so they work identically in CI, in ``doctor``,
inside a training loop and in the TUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Series:
    """One metric over steps. Steps are sorted and unique (a resumed run's replayed steps are deduplicated)."""

    name: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    epochs: list[float | None] = field(default_factory=list)
    # (steps list, values list, length converted, steps array, values array): see arrays()
    _arrays: Any = field(default=None, repr=False, compare=False)

    def arrays(self) -> tuple[Any, Any]:
        """``(steps, values)`` as float64 numpy arrays, converted incrementally: a live plot redraws every
        second, and converting a 1M-point list each time costs ~0.1 s. Only the points appended since the
        last call are converted (a series is append-only while followed; replaced lists start over)."""
        import numpy as np

        n = len(self.values)
        cache = self._arrays
        if (cache is None or cache[0] is not self.steps or cache[1] is not self.values or cache[2] > n
                or len(self.steps) != n):
            cache = (self.steps, self.values, 0, np.empty(0), np.empty(0))
        done = cache[2]
        if done < n:
            steps = np.concatenate([cache[3], np.asarray(self.steps[done:], dtype=float)])
            values = np.concatenate([cache[4], np.asarray(self.values[done:], dtype=float)])
            cache = (self.steps, self.values, n, steps, values)
        self._arrays = cache
        return cache[3], cache[4]

    def add(self, step: int, value: float, epoch: float | None = None) -> None:
        self.steps.append(int(step))
        self.values.append(float(value))
        self.epochs.append(epoch)

    def normalized(self) -> Series:
        """Sorted by step; for a step logged twice (resumed run) the last write wins."""
        last: dict[int, tuple[float, float | None]] = {}
        for s, v, e in zip(self.steps, self.values, self.epochs, strict=False):
            last[s] = (v, e)
        out = Series(self.name)
        for s in sorted(last):
            out.add(s, *last[s])
        return out

    def __len__(self) -> int:
        return len(self.values)

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]

    def best(self, mode: str = "min") -> tuple[int, float] | None:
        pairs = [(s, v) for s, v in zip(self.steps, self.values, strict=False) if math.isfinite(v)]
        if not pairs:
            return None
        return min(pairs, key=lambda p: p[1]) if mode == "min" else max(pairs, key=lambda p: p[1])


@dataclass
class History:
    """``train`` is the training loss; ``evals`` maps each eval set's loss key to its series
    (``eval_loss``, ``eval_val_loss``, ``eval_test_loss`` …); ``metrics`` holds every other logged scalar
    (``eval_accuracy``, ``learning_rate``, ``grad_norm``, ``exact_match`` …)."""

    train: Series = field(default_factory=lambda: Series("loss"))
    evals: dict[str, Series] = field(default_factory=dict)
    metrics: dict[str, Series] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def normalized(self) -> History:
        return History(
            train=self.train.normalized(),
            evals={k: s.normalized() for k, s in self.evals.items()},
            metrics={k: s.normalized() for k, s in self.metrics.items()},
            meta=dict(self.meta),
        )

    def add_log(self, step: int, entry: dict[str, Any], epoch: float | None = None) -> None:
        """Route one HF-style log dict (``{"loss": …}`` or ``{"eval_loss": …}``) into the right series."""
        for key, value in entry.items():
            if isinstance(value, str) and value.strip().lower() in _NON_FINITE:
                value = float(value)  # NaN/inf are written as strings ("nan") to keep the log strict JSON
            if key in ("step", "epoch", "t", "time", "kind", "split") or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if key in ("loss", "train_loss_step"):
                self.train.add(step, value, epoch)
            elif is_eval_loss_key(key):
                self.evals.setdefault(key, Series(key)).add(step, value, epoch)
            elif key in ("train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"):
                self.meta[key] = value  # HF's end-of-training summary, not a curve point
            else:
                self.metrics.setdefault(key, Series(key)).add(step, value, epoch)


_NON_FINITE = {"nan", "inf", "-inf", "infinity", "-infinity"}


def is_eval_loss_key(key: str) -> bool:
    """HF names eval losses ``eval_loss`` or ``eval_<set>_loss``; ehrdebug also writes ``val_loss``."""
    return (key.startswith("eval_") and key.endswith("loss")) or key in ("val_loss", "validation_loss")
