"""Compare: two or more runs side by side — curves overlaid, the benchmark table, final metrics, config differences.

The benchmark table is the one ``ehrdebug compare RUN RUN`` prints (``services.bench_table``: parameters,
train seconds, test AUROC/AUPRC/F1 with bootstrap intervals, the paired p-value against the best baseline);
it is computed after the curves are shown, so a slow bootstrap never delays them.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ehrdebug.tui.comparing import config_differences, final_metrics
from ehrdebug.tui.model import fmt_num
from ehrdebug.tui.widgets.curves import Curve, CurvePlot

VIEWS = ("eval loss", "train loss")


class CompareScreen(Screen[None]):
    HELP_TITLE = "Compare"
    HELP = (
        "Runs side by side: m switches the overlaid curves between validation and training loss, l a log scale. "
        "The benchmark table is `ehrdebug compare`'s (test AUROC/AUPRC/F1 with 95% intervals, p-value against "
        "the best baseline); below it each run's final metrics (best in bold) and the config keys that differ."
    )
    DEFAULT_CSS = """
    #cmp-bench { height: auto; max-height: 9; }
    #cmp-note { height: auto; max-height: 3; color: $text-muted; }
    """
    BINDINGS = [
        Binding("m", "cycle_view", "Curve"),
        Binding("l", "toggle_log", "Log y"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, runs: list[Any]) -> None:
        super().__init__()
        self.runs = list(runs)
        self.histories: list[Any] = []
        self.bench: tuple[tuple[str, ...], list[list[str]], list[str]] | None = None
        self.view = 0
        self.log_y = False

    def compose(self) -> ComposeResult:
        yield Header()
        names = " vs ".join(r.name for r in self.runs) or "nothing to compare"
        yield Static(f"Compare — {names}", classes="screen-title")
        yield CurvePlot("", id="cmp-plot")
        yield DataTable(id="cmp-bench", zebra_stripes=True, cursor_type="row")
        yield Static("benchmark table: computing…", id="cmp-note")
        with Horizontal(id="cmp-tables"):
            yield DataTable(id="cmp-metrics", zebra_stripes=True, cursor_type="row")
            yield DataTable(id="cmp-config", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="cmp-load")
    def _load(self) -> None:
        histories = [run.history() for run in self.runs]
        configs = []
        for run in self.runs:
            try:
                configs.append((run.info or {}).get("config") or {})
            except Exception:  # noqa: BLE001 - an unreadable run.json compares as empty
                configs.append({})
        self.app.call_from_thread(self._show, histories, configs)
        from ehrdebug.tui import services

        try:
            bench = services.bench_table([run.path for run in self.runs])
        except Exception as exc:  # noqa: BLE001 - a run the table cannot read is said, not a crash
            bench = ((), [], [f"benchmark table unavailable: {exc}"])
        self.app.call_from_thread(self._show_bench, bench)

    def _show_bench(self, bench: tuple[tuple[str, ...], list[list[str]], list[str]]) -> None:
        self.bench = bench
        head, rows, notes = bench
        table = self.query_one("#cmp-bench", DataTable)
        table.clear(columns=True)
        if head:
            table.add_columns(*head)
            for cells in rows:
                table.add_row(*cells)
        table.display = bool(head)
        note = self.query_one("#cmp-note", Static)
        note.update("\n".join(notes))
        note.display = bool(notes)

    def _show(self, histories: list[Any], configs: list[dict[str, Any]]) -> None:
        self.histories = histories
        self._draw()
        names = [_short_name(r.name, i) for i, r in enumerate(self.runs)]
        metrics = self.query_one("#cmp-metrics", DataTable)
        metrics.clear(columns=True)
        metrics.add_columns("metric", *names)
        finals = [final_metrics(h) for h in histories]
        keys = sorted({k for f in finals for k in f}, key=lambda k: (not k.startswith("eval_loss"), k))
        for key in keys:
            values = [f.get(key) for f in finals]
            best = _best(key, values)
            cells = [
                Text(fmt_num(v), style="bold green" if v is not None and v == best else "") for v in values
            ]
            metrics.add_row(key, *cells)
        config = self.query_one("#cmp-config", DataTable)
        config.clear(columns=True)
        config.add_columns("config key", *names)
        diffs = config_differences(configs)
        for key, values in diffs:
            config.add_row(key, *(_cell(v) for v in values))
        if not diffs:
            config.add_row("(no differences)", *("" for _ in names))

    def _draw(self) -> None:
        view = VIEWS[self.view % len(VIEWS)]
        curves = []
        for i, (run, history) in enumerate(zip(self.runs, self.histories, strict=False)):
            if view == "train loss":
                series = history.train
            else:
                key = "eval_loss" if "eval_loss" in history.evals else next(iter(sorted(history.evals)), None)
                series = history.evals.get(key) if key else None
            if series is not None:
                curves.append(Curve(_short_name(run.name, i), series.steps, series.values))
        self.query_one(CurvePlot).set_curves(curves, title=f"{view} (m switches)", log_y=self.log_y)

    def action_cycle_view(self) -> None:
        self.view += 1
        self._draw()

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y
        self._draw()

    def action_back(self) -> None:
        self.app.pop_screen()


def _short_name(name: str, i: int) -> str:
    return f"{i + 1}:{name[-18:]}"


def _best(key: str, values: list[Any]) -> Any:
    nums = [v for v in values if isinstance(v, (int, float))]
    if len(nums) < 2:
        return None
    higher_better = any(
        w in key for w in ("accuracy", "auroc", "auprc", "f1", "match", "valid", "precision", "recall")
    )
    return max(nums) if higher_better else min(nums)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 30 else text[:29] + "…"
