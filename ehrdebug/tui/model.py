"""Plain data logic behind the TUI screens (no Textual here, so it is tested on its own).

The live view is fed incrementally: ``LiveState.feed(events)`` takes the events ``EventTail.read_new()``
returned since the last poll and updates curves, samples, alerts and findings in place, so following a
run never re-reads or re-parses the whole log. Plots draw ``downsample()``-d copies, never raw series.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ehrdebug.runstore.history import History, Series

SEVERITY_STYLE = {"fail": "bold red", "warn": "yellow", "info": "cyan", "ok": "green"}
STATUS_STYLE = {
    "live": "bold green",
    "finished": "cyan",
    "crashed": "bold red",
    "stale": "yellow",
    "unknown": "dim",
}


def downsample(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points: each bucket's min and max at the bucket's middle step.

    Min/max rather than striding so a one-step loss spike is never dropped from the picture (a bucket
    is narrower than a terminal column, so the envelope is what the eye would see anyway); non-finite
    values are left out (plotext cannot draw them). Vectorised: 1M points take a few milliseconds.
    """
    import numpy as np

    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(y) & np.isfinite(x)
    if not keep.all():
        x, y = x[keep], y[keep]
    n = len(y)
    if buckets <= 0 or n <= 2 * buckets:
        return x.tolist(), y.tolist()
    edges = np.linspace(0, n, buckets + 1).astype(int)[:-1]
    lo = np.minimum.reduceat(y, edges)
    hi = np.maximum.reduceat(y, edges)
    ends = np.append(edges[1:], n) - 1
    mid = (x[edges] + x[ends]) / 2
    out_x = np.repeat(mid, 2)
    out_y = np.empty(2 * buckets)
    out_y[0::2], out_y[1::2] = hi, lo  # falling curves (losses) draw top to bottom in each column
    return out_x.tolist(), out_y.tolist()


def series_points(series: Series, buckets: int) -> tuple[list[float], list[float]]:
    return downsample(series.steps, series.values, buckets)


def fmt_age(ts: float | None, now: float | None = None) -> str:
    """``'12s ago'``, ``'5m ago'``, ``'3h ago'``, ``'2d ago'``; ``'-'`` when unknown."""
    if not ts:
        return "-"
    delta = max(0.0, (now if now is not None else time.time()) - ts)
    return f"{fmt_duration(delta)} ago"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def fmt_num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "nan"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 1e-3:
        return f"{value:.3g}" if abs(value) >= 1000 else f"{value:.2e}"
    return f"{value:.4g}"


@dataclass
class RunRow:
    """One line of the Runs screen."""

    path: str
    name: str
    kind: str
    status: str
    architecture: str
    best: str
    last_update: float

    def cells(self, now: float | None = None) -> tuple[str, ...]:
        return (
            self.name,
            self.status,
            self.kind,
            short_arch(self.architecture),
            self.best,
            fmt_age(self.last_update, now),
        )


def short_arch(name: str) -> str:
    """``BartForConditionalGeneration`` → ``Bart·CondGen``: the family first, it is what a user scans for."""
    if not name:
        return "-"
    for long, short in (
        ("ForConditionalGeneration", "·CondGen"),
        ("ForCausalLM", "·CausalLM"),
        ("ForMaskedLM", "·MLM"),
        ("ForSequenceClassification", "·SeqCls"),
        ("ForPreTraining", "·PreTrain"),
    ):
        name = name.replace(long, short)
    return name


def run_row(run: Any, name: str | None = None) -> RunRow:
    """Summarise a run for the list; a run that cannot be read still gets a row (status 'unknown').

    ehrdebug runs are read with the same fast reader as the Live run screen (a 1M-line log in about a
    second), and their status comes from the last status event, or from the log's age when still open.
    """
    try:
        if (
            run.kind == "ehrdebug"
            and getattr(run, "events_path", None) is not None
            and run.events_path.is_file()
        ):
            state = LiveState.from_run(run)
            best = state.best_eval()
            status = (
                state.state
                if state.state in ("finished", "crashed")
                else run._status_from_time()
                if state.state
                else "unknown"
            )
        else:
            best = run.best_eval()
            status = run.status
        best_text = "-"
        if best:
            label = "" if best[0] == "eval_loss" else f"{best[0]}="
            best_text = f"{label}{fmt_num(best[2])} @{best[1]}"
        arch = run.architecture
    except Exception as exc:  # a broken run must not hide the others  # noqa: BLE001
        best_text, status, arch = f"unreadable: {exc}"[:60], "unknown", ""
    return RunRow(
        str(run.path), name or run.name, run.kind, status, arch, best_text, float(run.last_update or 0.0)
    )


@dataclass
class LiveState:
    """Everything the Live run screen shows, updated by ``feed`` with the newest events only."""

    history: History = field(default_factory=History)
    samples: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    state: str = ""
    first_t: float | None = None
    last_t: float | None = None
    last_step: int = 0
    last_epoch: float | None = None
    lr: float | None = None
    samples_per_second: float | None = None
    total_steps: int | None = None
    total_epochs: float | None = None
    version: int = 0
    read_end: int | None = None  # byte offset of the log the first read ended at (a follower starts there)
    _rate: list[tuple[float, int]] = field(default_factory=list)
    _floor: dict[str, int] = field(default_factory=dict)  # last step per kind read by the initial load
    _seen: set[tuple[Any, ...]] = field(default_factory=set)

    @classmethod
    def from_run(cls, run: Any) -> LiveState:
        """Initial state from the run store (its fast readers), before following new lines."""
        state = cls()
        config = (run.info or {}).get("config") or {}
        state.total_steps = _first_int(config, ("max_steps", "total_steps", "num_steps"))
        epochs = config.get("num_train_epochs", config.get("num_epochs", config.get("epochs")))
        state.total_epochs = (
            float(epochs) if isinstance(epochs, (int, float)) and not isinstance(epochs, bool) else None
        )
        other: list[dict[str, Any]] | None = None
        events_path = getattr(run, "events_path", None)
        if run.kind == "ehrdebug" and events_path is not None and events_path.is_file():
            from ehrdebug.runstore.fastload import load

            try:
                got = load(events_path)
                state.history, other, state._rate, state.read_end = got.history, got.other, got.rate, got.end
                state.last_t = state._rate[-1][0] if state._rate else None
            except ValueError:
                other = None
        if other is None:
            state.history = run.history()
            other = (
                run.events(kinds=("sample", "alert", "finding", "checkpoint", "status"))
                if run.kind == "ehrdebug"
                else []
            )
        for key in ("learning_rate", "lr"):
            last = state.history.metrics[key].last() if key in state.history.metrics else None
            if last is not None:
                state.lr = last[1]
        last = state.history.train.last()  # (step, value, epoch): no 1M-item list is built for the screen
        state._floor["train"] = last[0] if last else -1
        state._floor["eval"] = max(
            (p[0] for p in (s.last() for s in state.history.evals.values()) if p), default=-1
        )
        if last:
            state.last_step, state.last_epoch = last[0], last[2]
        state._feed_other(other)
        if run.kind == "hf":
            state.state = run.status
        state.version += 1
        return state

    def feed(self, events: Iterable[dict[str, Any]]) -> bool:
        """Add newly appended events; True when anything visible changed."""
        changed = False
        rest = []
        for event in events:
            kind = event.get("kind")
            step = int(event.get("step", 0) or 0)
            t = event.get("t")
            if isinstance(t, (int, float)):
                self.first_t = t if self.first_t is None else min(self.first_t, t)
                self.last_t = t if self.last_t is None else max(self.last_t, t)
            if kind in ("train", "eval"):
                if step <= self._floor.get(str(kind), -1):
                    continue  # already read by the initial load (the tail starts a little before its end)
                payload = {k: v for k, v in event.items() if k not in ("t", "step", "kind")}
                self.history.add_log(step, payload, event.get("epoch"))
                if kind == "train":
                    self.last_step = max(self.last_step, step)
                    if isinstance(event.get("epoch"), (int, float)):
                        self.last_epoch = float(event["epoch"])
                    lr = event.get("lr", event.get("learning_rate"))
                    if isinstance(lr, (int, float)):
                        self.lr = float(lr)
                    sps = event.get("samples_per_second")
                    if isinstance(sps, (int, float)):
                        self.samples_per_second = float(sps)
                    if isinstance(t, (int, float)):
                        self._rate.append((float(t), step))
                        del self._rate[:-50]
                changed = True
            else:
                rest.append(event)
        if rest:
            changed = self._feed_other(rest) or changed
        if changed:
            self.version += 1
        return changed

    def _feed_other(self, events: Iterable[dict[str, Any]]) -> bool:
        changed = False
        for event in events:
            key = (
                event.get("t"),
                event.get("step"),
                event.get("kind"),
                str(event.get("title", event.get("message", event.get("output", "")))),
            )
            if key in self._seen:
                continue  # the same line seen by the initial read and by the tail
            self._seen.add(key)
            kind = event.get("kind")
            t = event.get("t")
            if isinstance(t, (int, float)) and (self.last_t is None or t > self.last_t):
                self.last_t = float(t)
            if kind == "sample":
                self.samples.append(event)
            elif kind == "alert":
                self.alerts.append(event)
            elif kind == "finding":
                self.findings.append(event)
            elif kind == "checkpoint":
                self.checkpoints.append(int(event.get("step", 0) or 0))
            elif kind == "status":
                self.state = str(event.get("state", ""))
            else:
                continue
            changed = True
        return changed

    # -- figures ---------------------------------------------------------------------------------
    def steps_per_second(self) -> float | None:
        """From the last ~50 train events' timestamps (robust to a pause long ago)."""
        if len(self._rate) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def eta_seconds(self) -> float | None:
        rate = self.steps_per_second()
        if rate and self.total_steps and self.total_steps > self.last_step:
            return (self.total_steps - self.last_step) / rate
        if rate and self.total_epochs and self.last_epoch and self.last_step:
            steps_per_epoch = self.last_step / self.last_epoch
            remaining = (self.total_epochs - self.last_epoch) * steps_per_epoch
            return remaining / rate if remaining > 0 else 0.0
        return None

    def best_eval(self) -> tuple[str, int, float] | None:
        if not self.history.evals:
            return None
        key = "eval_loss" if "eval_loss" in self.history.evals else sorted(self.history.evals)[0]
        best = self.history.evals[key].best("min")
        return (key, best[0], best[1]) if best else None

    def summary_lines(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the stats panel."""
        last = self.history.train.last()
        loss = last[1] if last else None
        best = self.best_eval()
        sps = self.steps_per_second()
        progress = f"{self.last_step}" + (f"/{self.total_steps}" if self.total_steps else "")
        epoch = "-"
        if self.last_epoch is not None:
            epoch = f"{self.last_epoch:.2f}" + (f"/{fmt_num(self.total_epochs)}" if self.total_epochs else "")
        speed = f"{sps:.2f} it/s" if sps else "-"
        if self.samples_per_second:
            speed += f" {self.samples_per_second:.0f}/s"
        return [
            ("state", self.state or "-"),
            ("step", progress),
            ("epoch", epoch),
            ("loss", fmt_num(loss)),
            ("best val", f"{fmt_num(best[2])} @{best[1]}" if best else "-"),
            ("lr", fmt_num(self.lr)),
            ("speed", speed),
            ("ETA", fmt_duration(self.eta_seconds()) if self.state not in ("finished", "crashed") else "-"),
            ("updated", fmt_age(self.last_t)),
        ]


def _first_int(config: dict[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
