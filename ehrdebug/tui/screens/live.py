"""Live run: curves, learning rate, throughput, ETA, samples and alerts, following the event log.

The log is read once by the run store's readers (in a thread started with the app when one run is
opened, ``tui/preload.py``, else in a worker when the screen mounts, so the screen shows at once), then
followed from where that read ended with ``EventTail.read_new()`` on a timer: each tick costs one ``stat``
when nothing was written and reads only the appended bytes otherwise. A plot rebuild (plotext plus Textual's repaint, ~20 ms at
120x40) is the dearest part of a tick, so the plot is rebuilt only when curve points arrived, and when
they only grew the same curves, at most every ``PLOT_EVERY`` seconds (the stats panel still shows each
new step at once); a new curve, a finished run, a key press or a resize redraw at once.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static

from ehrdebug.tui.model import SEVERITY_STYLE, LiveState
from ehrdebug.tui.widgets.curves import Curve, CurvePlot

MAX_READ = 8 * 1024 * 1024  # bytes per follow tick: a burst is caught up over a few ticks
PLOT_EVERY = 3.0  # seconds between plot rebuilds while a followed run only appends points


class LiveScreen(Screen[None]):
    HELP_TITLE = "Live run"
    HELP = (
        "Training and validation curves, learning rate, throughput and ETA, the latest generated samples "
        "and alerts, updated as the training process appends to the event log. m switches the plot between "
        "loss, learning rate and the other logged metrics."
    )
    BINDINGS = [
        Binding("m", "cycle_view", "Metric"),
        Binding("l", "toggle_log", "Log y", show=False),
        Binding("p", "toggle_follow", "Pause"),
        Binding("f", "open('findings')", "Findings"),
        Binding("t", "open('tokens')", "Tokens"),
        Binding("s", "open('sampler')", "Sampler"),
        Binding("x", "open('fix')", "Fix"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, run: Any, interval: float | None = None) -> None:
        super().__init__()
        self.run = run
        self.interval = interval
        self.state: LiveState | None = None
        self.tail: Any = None
        self.following = True
        self.view = 0
        self.log_y = False
        self._drawn_key: tuple[Any, ...] | None = None  # curve lengths and run state the plot shows
        self._drawn_at = 0.0
        self._plot_timer: Any = None
        self._poll_timer: Any = None
        self._stats_rows: list[tuple[str, str]] | None = None
        self._samples_shown = 0
        self._alerts_shown = 0
        self._hf_mtime = 0.0
        self.ticks = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._title(), id="live-title", classes="screen-title")
        with Horizontal(id="live-top"):
            yield CurvePlot("loss", id="live-plot")
            with Vertical(id="live-side"):
                yield Static("loading…", id="live-stats")
        with Horizontal(id="live-bottom"):
            yield RichLog(id="live-samples", wrap=True, markup=False, max_lines=200)
            yield RichLog(id="live-alerts", wrap=True, markup=False, max_lines=200)
        yield Footer()

    def _title(self) -> str:
        arch = getattr(self.run, "architecture", "") or ""
        return f"{self.run.name}  [dim]{self.run.kind} {arch}  {self.run.path}[/]"

    def on_mount(self) -> None:
        self.query_one("#live-samples", RichLog).border_title = "samples"
        self.query_one("#live-alerts", RichLog).border_title = "alerts"
        self._load()

    @work(thread=True, exclusive=True, group="live-load")
    def _load(self) -> None:
        from ehrdebug.tui.preload import read_live

        first = getattr(self.app, "first_read", None)  # started when the app was created (tui.preload)
        got = first.take(self.run) if first is not None else None
        state, tail = got if got is not None else read_live(self.run)
        self._hf_mtime = float(self.run.last_update or 0.0)
        self.app.call_from_thread(self._loaded, state, tail)

    def _loaded(self, state: LiveState, tail: Any) -> None:
        self.state = state
        self.tail = tail
        self._drawn_key = None  # a freshly read state is drawn at once
        self._update_views()
        if self._poll_timer is None:  # an HF run re-read after its trainer_state.json changed keeps its timer
            interval = (
                self.interval if self.interval is not None else getattr(self.app, "follow_interval", 1.0)
            )
            self._poll_timer = self.set_interval(interval, self.poll)

    # -- following -----------------------------------------------------------------------------
    def poll(self) -> None:
        """One follow tick: read what was appended (bounded), update only if something changed."""
        if not self.following or self.state is None:
            return
        self.ticks += 1
        if self.tail is not None:
            events = self.tail.read_new(max_bytes=MAX_READ)
            if events and self.state.feed(events):
                self._update_views()
            elif self.ticks % 5 == 0:
                self._update_stats()  # keep "updated 12s ago" honest at low cost
        else:
            mtime = float(self.run.last_update or 0.0)
            if mtime > self._hf_mtime:
                self._hf_mtime = mtime
                self._load()

    def _update_views(self) -> None:
        state = self.state
        if state is None:
            return
        self._maybe_draw_plot()
        self._update_stats()
        samples = self.query_one("#live-samples", RichLog)
        width = samples.scrollable_content_region.width or None  # wrap to the panel, not scroll sideways
        for event in state.samples[self._samples_shown :][-20:]:
            line = Text(f"@{event.get('step', '?')} ", style="dim")
            if event.get("prompt"):
                line.append(str(event["prompt"]), style="bold")
                line.append(" → ")
            line.append(str(event.get("output", "")))
            samples.write(line, width=width)
        self._samples_shown = len(state.samples)
        alerts = self.query_one("#live-alerts", RichLog)
        width = alerts.scrollable_content_region.width or None
        for event in state.alerts[self._alerts_shown :][-50:]:
            sev = str(event.get("severity", "warn"))
            line = Text(f"@{event.get('step', '?')} ", style="dim")
            line.append(f"{sev.upper():5} ", style=SEVERITY_STYLE.get(sev, ""))
            line.append(str(event.get("message", "")))
            if event.get("probe"):
                line.append(f" ({event['probe']})", style="dim")
            alerts.write(line, width=width)
            if self._alerts_shown and sev in ("warn", "fail"):
                self.notify(
                    str(event.get("message", "")),
                    title=f"alert: {sev}",
                    severity="error" if sev == "fail" else "warning",
                )
        self._alerts_shown = len(state.alerts)
        title = f"alerts ({len(state.alerts)})"
        if alerts.border_title != title:
            alerts.border_title = title

    def _plot_key(self) -> tuple[Any, ...]:
        """What the plot depends on besides the view: each curve's length, and the run's state."""
        assert self.state is not None
        history = self.state.history
        return (
            len(history.train),
            tuple((k, len(s)) for k, s in sorted(history.evals.items())),
            tuple((k, len(s)) for k, s in sorted(history.metrics.items())),
            self.state.state,
        )

    def _maybe_draw_plot(self) -> None:
        """Rebuild the plot if its curves changed: at once for a new curve or a new run state, otherwise
        (points appended to the same curves) at most every PLOT_EVERY seconds, with a timer for the rest."""
        if self.state is None:
            return
        key = self._plot_key()
        drawn = self._drawn_key
        if key == drawn:
            return
        grew_only = (
            drawn is not None
            and key[3] == drawn[3]
            and [k for k, _ in key[1]] == [k for k, _ in drawn[1]]
            and [k for k, _ in key[2]] == [k for k, _ in drawn[2]]
        )
        wait = self._drawn_at + PLOT_EVERY - time.monotonic()
        if grew_only and wait > 0:
            if self._plot_timer is None:
                self._plot_timer = self.set_timer(wait, self._deferred_draw)
            return
        self._draw_plot()

    def _deferred_draw(self) -> None:
        self._plot_timer = None
        if self.state is not None and self._plot_key() != self._drawn_key:
            self._draw_plot()

    def _update_stats(self) -> None:
        if self.state is None:
            return
        rows = self.state.summary_lines()
        if not self.following:
            rows.append(("follow", "paused (p)"))
        if rows == self._stats_rows:
            return  # nothing to repaint
        # a new layout only when the number of rows changed (the panel's width is fixed by the CSS)
        layout = self._stats_rows is None or len(rows) != len(self._stats_rows)
        self._stats_rows = rows
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        for label, value in rows:
            if label == "follow":
                table.add_row(label, Text(value, style="yellow"))
                continue
            style = {
                "live": "bold green",
                "started": "bold green",
                "crashed": "bold red",
                "finished": "cyan",
            }.get(value, "")
            table.add_row(label, Text(value, style=style if label == "state" else ""))
        self.query_one("#live-stats", Static).update(table, layout=layout)

    # -- plot views -------------------------------------------------------------------------------
    def views(self) -> list[str]:
        if self.state is None:
            return ["loss"]
        names = ["loss"]
        metrics = self.state.history.metrics
        if "learning_rate" in metrics or "lr" in metrics:
            names.append("lr")
        names += [k for k in sorted(metrics) if k not in ("learning_rate", "lr", "epoch")]
        return names

    def _draw_plot(self) -> None:
        if self.state is None:
            return
        if self._plot_timer is not None:
            self._plot_timer.stop()
            self._plot_timer = None
        self._drawn_key, self._drawn_at = self._plot_key(), time.monotonic()
        history = self.state.history
        views = self.views()
        name = views[self.view % len(views)]
        curves: list[Curve] = []
        if name == "loss":
            curves.append(Curve("train", *history.train.arrays()))
            for key, series in sorted(history.evals.items()):
                curves.append(Curve(key, *series.arrays()))
            title = "loss (train / validation)"
        else:
            key = (
                name
                if name in history.metrics
                else ("learning_rate" if "learning_rate" in history.metrics else "lr")
            )
            series = history.metrics[key]
            curves.append(Curve(key, *series.arrays()))
            title = key
        self.query_one(CurvePlot).set_curves(
            curves, title=f"{title}  [{self.view % len(views) + 1}/{len(views)}]", log_y=self.log_y
        )

    def action_cycle_view(self) -> None:
        self.view += 1
        self._draw_plot()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y
        self._draw_plot()

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        self._update_stats()
        self.notify("following" if self.following else "paused: press p to follow again")

    def action_open(self, screen: str) -> None:
        self.app.open_screen(screen, self.run)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.action_back_or_quit()  # type: ignore[attr-defined]  # the list of runs, built if need be
