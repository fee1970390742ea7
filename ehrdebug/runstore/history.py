"""Training history in one shape, whatever wrote it (an ehrdebug run or an HF trainer_state.json).

Curve probes take a ``History`` and nothing else, so they work identically in CI, in ``doctor``,
inside a training loop and in the TUI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# (epochs as float64, which are set (None: all), count): the epochs of a Series built from arrays
_EpochBase = tuple[Any, Any, int]


class Series:
    """One metric over steps. Steps are sorted and unique (a resumed run's replayed steps are deduplicated).

    A series read from a large log (``from_arrays``) keeps its points as numpy arrays and builds the Python
    lists ``steps``/``values``/``epochs`` only when one is asked for: a 1M-point list costs ~30 ms to build
    and the TUI never needs one (it plots ``arrays()`` and reads ``last()``). Points added later (a followed
    run) go to plain lists after the arrays; the lists always show all points.
    """

    def __init__(
        self,
        name: str,
        steps: list[int] | None = None,
        values: list[float] | None = None,
        epochs: list[float | None] | None = None,
    ) -> None:
        self.name = name
        self._steps: list[int] = steps if steps is not None else []
        self._values: list[float] = values if values is not None else []
        self._epochs: list[float | None] = epochs if epochs is not None else []
        # array prefixes of the points not yet turned into lists (None: the list holds every point)
        self._base_steps: Any = None
        self._base_values: Any = None
        self._base_epochs: _EpochBase | None = None
        self._sorted = False  # built sorted and unique: normalized() has nothing to do
        self._cache: tuple[int, Any, Any] | None = None  # (points converted, steps array, values array)

    @classmethod
    def from_arrays(
        cls, name: str, steps: Any, values: Any, epochs: Any = None, epoch_set: Any = None
    ) -> Series:
        """A series of sorted, unique int64 ``steps`` with float64 ``values``; ``epochs`` float64 (None: no
        epochs), ``epoch_set`` a bool mask of the points that have one (None: all of them)."""
        import numpy as np

        out = cls(name)
        steps = np.asarray(steps, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        out._base_steps, out._base_values = steps, values
        out._base_epochs = (epochs, None if epoch_set is None or epoch_set.all() else epoch_set, len(values))
        out._sorted = True
        out._cache = (len(values), steps.astype(np.float64), values)
        return out

    # -- the lists, built on first use ---------------------------------------------------------
    @property
    def steps(self) -> list[int]:
        if self._base_steps is not None:
            self._steps = self._base_steps.tolist() + self._steps
            self._base_steps = None
        return self._steps

    @steps.setter
    def steps(self, value: list[int]) -> None:
        self._base_steps, self._steps, self._cache, self._sorted = None, value, None, False

    @property
    def values(self) -> list[float]:
        if self._base_values is not None:
            self._values = self._base_values.tolist() + self._values
            self._base_values = None
        return self._values

    @values.setter
    def values(self, value: list[float]) -> None:
        self._base_values, self._values, self._cache, self._sorted = None, value, None, False

    @property
    def epochs(self) -> list[float | None]:
        if self._base_epochs is not None:
            self._epochs = _epoch_list(self._base_epochs) + self._epochs
            self._base_epochs = None
        return self._epochs

    @epochs.setter
    def epochs(self, value: list[float | None]) -> None:
        self._base_epochs, self._epochs, self._sorted = None, value, False

    def arrays(self) -> tuple[Any, Any]:
        """``(steps, values)`` as float64 numpy arrays, converted incrementally: a live plot redraws every
        second, and converting a 1M-point list each time costs ~0.1 s. Only the points added since the last
        call are converted (a series is append-only while followed; assigned lists start over)."""
        import numpy as np

        n = len(self)
        cache = self._cache
        if cache is None or cache[0] > n or _count(self._base_steps, self._steps) != n:
            cache = (0, np.empty(0), np.empty(0))
        done = cache[0]
        if done < n:
            steps = np.concatenate([cache[1], _tail(self._base_steps, self._steps, done)])
            values = np.concatenate([cache[2], _tail(self._base_values, self._values, done)])
            cache = (n, steps, values)
        self._cache = cache
        return cache[1], cache[2]

    def add(self, step: int, value: float, epoch: float | None = None) -> None:
        self._steps.append(int(step))
        self._values.append(float(value))
        self._epochs.append(epoch)
        self._sorted = False

    def last(self) -> tuple[int, float, float | None] | None:
        """``(step, value, epoch)`` of the last point, without building any list; None when empty."""
        if not len(self):
            return None
        step = self._steps[-1] if self._steps else int(self._base_steps[-1])
        value = self._values[-1] if self._values else float(self._base_values[-1])
        if self._epochs:
            epoch = self._epochs[-1]
        else:
            base = self._base_epochs
            epoch = None
            if base is not None and base[0] is not None and (base[1] is None or bool(base[1][-1])):
                epoch = float(base[0][-1])
        return step, value, epoch

    def normalized(self) -> Series:
        """Sorted by step; for a step logged twice (resumed run) the last write wins."""
        if self._base_values is not None or self._base_steps is not None:
            return self._normalized_arrays()
        last: dict[int, tuple[float, float | None]] = {}
        for s, v, e in zip(self.steps, self.values, self.epochs, strict=False):
            last[s] = (v, e)
        out = Series(self.name)
        for s in sorted(last):
            out.add(s, *last[s])
        return out

    def _normalized_arrays(self) -> Series:
        """``normalized()`` of a series that holds arrays, in numpy (a 1M-point dict costs a second)."""
        import numpy as np

        whole = (
            self._base_steps is not None and self._base_values is not None and self._base_epochs is not None
        )
        if self._sorted and whole and not (self._steps or self._values or self._epochs):
            out = Series.from_arrays(self.name, self._base_steps, self._base_values)
            out._base_epochs = self._base_epochs
            return out
        steps = np.concatenate([_head(self._base_steps, np.int64), np.asarray(self._steps, dtype=np.int64)])
        values = np.concatenate([_head(self._base_values, np.float64), np.asarray(self._values, dtype=float)])
        epochs, epoch_set = _epoch_arrays(self._base_epochs, self._epochs)
        keep = last_of_each_step(steps)
        if keep is not None:
            steps, values, epochs, epoch_set = steps[keep], values[keep], epochs[keep], epoch_set[keep]
        return Series.from_arrays(self.name, steps, values, epochs, epoch_set)

    def __len__(self) -> int:
        return _count(self._base_values, self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return (self.name, self.steps, self.values, self.epochs) == (
            other.name,
            other.steps,
            other.values,
            other.epochs,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as the dataclass it was)

    def __repr__(self) -> str:
        return f"Series(name={self.name!r}, points={len(self)})"

    @property
    def finite(self) -> list[float]:
        if self._base_values is not None:
            import numpy as np

            values = self.arrays()[1]
            return values[np.isfinite(values)].tolist()
        return [v for v in self.values if math.isfinite(v)]

    def best(self, mode: str = "min") -> tuple[int, float] | None:
        """``(step, value)`` of the lowest (``"min"``) or highest finite value; the first one on a tie."""
        if self._base_values is not None:
            import numpy as np

            steps, values = self.arrays()
            ok = np.isfinite(values)
            if not ok.any():
                return None
            i = int(
                np.argmin(np.where(ok, values, np.inf))
                if mode == "min"
                else np.argmax(np.where(ok, values, -np.inf))
            )
            return int(steps[i]), float(values[i])
        pairs = [(s, v) for s, v in zip(self.steps, self.values, strict=False) if math.isfinite(v)]
        if not pairs:
            return None
        return min(pairs, key=lambda p: p[1]) if mode == "min" else max(pairs, key=lambda p: p[1])


def _count(base: Any, items: list[Any]) -> int:
    return (len(base) if base is not None else 0) + len(items)


def _tail(base: Any, items: list[Any], start: int) -> Any:
    """Points ``start:`` of ``base ++ items`` as float64."""
    import numpy as np

    nb = len(base) if base is not None else 0
    head = base[start:].astype(np.float64) if base is not None and start < nb else np.empty(0)
    return np.concatenate([head, np.asarray(items[max(0, start - nb) :], dtype=np.float64)])


def _head(base: Any, dtype: Any) -> Any:
    import numpy as np

    return base if base is not None else np.empty(0, dtype=dtype)


def _epoch_arrays(base: _EpochBase | None, items: list[Any]) -> tuple[Any, Any]:
    """(float64 epochs, bool mask of the points that have one) of ``base ++ items``."""
    import numpy as np

    if base is None:
        epochs, epoch_set = np.empty(0), np.empty(0, dtype=bool)
    elif base[0] is None:
        epochs, epoch_set = np.zeros(base[2]), np.zeros(base[2], dtype=bool)
    else:
        epochs = base[0]
        epoch_set = base[1] if base[1] is not None else np.ones(base[2], dtype=bool)
    ok = [isinstance(e, (int, float)) and not isinstance(e, bool) for e in items]
    more = np.asarray([e if k else 0.0 for e, k in zip(items, ok, strict=True)], dtype=float)
    return np.concatenate([epochs, more]), np.concatenate([epoch_set, np.asarray(ok, dtype=bool)])


def _epoch_list(base: _EpochBase) -> list[float | None]:
    epochs, epoch_set, n = base
    if epochs is None:
        return [None] * n
    if epoch_set is None:
        return epochs.tolist()
    return [e if ok else None for e, ok in zip(epochs.tolist(), epoch_set.tolist(), strict=True)]


def last_of_each_step(steps: Any) -> Any:
    """Indices that sort ``steps`` and keep, of a step written more than once, its last write (what
    ``Series.normalized()`` keeps); None when the steps are already sorted and unique."""
    import numpy as np

    if len(steps) < 2 or bool(np.all(steps[1:] > steps[:-1])):
        return None
    _, first_from_end = np.unique(steps[::-1], return_index=True)
    return len(steps) - 1 - first_from_end


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
            routed = route(key, value)
            if routed is None:
                continue
            where, value = routed
            if where == "train":
                self.train.add(step, value, epoch)
            elif where == "eval":
                self.evals.setdefault(key, Series(key)).add(step, value, epoch)
            elif where == "meta":
                self.meta[key] = value  # HF's end-of-training summary, not a curve point
            else:
                self.metrics.setdefault(key, Series(key)).add(step, value, epoch)


_NON_FINITE = {"nan", "inf", "-inf", "infinity", "-infinity"}
SKIPPED_KEYS = frozenset(("step", "epoch", "t", "time", "kind", "split"))
TRAIN_KEYS = frozenset(("loss", "train_loss_step"))
META_KEYS = frozenset(
    ("train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos")
)


def route(key: str, value: Any) -> tuple[str, Any] | None:
    """Where ``History.add_log`` puts one logged key: ``("train" | "eval" | "meta" | "metric", value)``, or
    None for a key it skips (bookkeeping keys, values that are not numbers). One rule for every reader."""
    if isinstance(value, str) and value.strip().lower() in _NON_FINITE:
        value = float(value)  # NaN/inf are written as strings ("nan") to keep the log strict JSON
    if key in SKIPPED_KEYS or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if key in TRAIN_KEYS:
        return "train", value
    if is_eval_loss_key(key):
        return "eval", value
    if key in META_KEYS:
        return "meta", value
    return "metric", value


def is_eval_loss_key(key: str) -> bool:
    """HF names eval losses ``eval_loss`` or ``eval_<set>_loss``; ehrdebug also writes ``val_loss``."""
    return (key.startswith("eval_") and key.endswith("loss")) or key in ("val_loss", "validation_loss")
