"""Runs: every run under the folder (ehrdebug runs and HF Trainer output dirs) with its status."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ehrdebug.tui.model import STATUS_STYLE, RunRow, run_row

COLUMNS = ("run", "status", "kind", "architecture", "best eval", "updated")
WIDTHS = {"status": 8, "kind": 8, "architecture": 12, "best eval": 14, "updated": 8}


class RunsScreen(Screen[None]):
    HELP_TITLE = "Runs"
    HELP = "Every run under the folder. Enter opens the live view; space marks runs to compare."
    BINDINGS = [
        Binding("enter", "open('live')", "Open", key_display="⏎", priority=True),
        Binding("f", "open('findings')", "Findings"),
        Binding("t", "open('tokens')", "Tokens"),
        Binding("s", "open('sampler')", "Sampler", show=False),
        Binding("x", "open('fix')", "Fix"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "refresh", "Refresh", show=False),
    ]

    def __init__(self, root: Path, refresh_every: float = 10.0, lazy: bool = False) -> None:
        super().__init__()
        self.lazy = lazy  # under a run opened directly: read the list only when it is first shown
        self.root = root
        self.refresh_every = refresh_every
        self.runs: dict[str, Any] = {}
        self.rows: dict[str, RunRow] = {}
        self.marked: list[str] = []
        self._computed: dict[str, tuple[float, float, float]] = {}  # path -> (mtime, when, seconds it took)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Runs under {self.root}", id="runs-title", classes="screen-title")
        table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(col, key=col, width=WIDTHS.get(col))
        if not self.lazy:
            self._start()

    def on_screen_resume(self) -> None:
        if self.lazy and self.app.screen is self:
            self.lazy = False
            self._start()

    def _start(self) -> None:
        self.action_refresh()
        if self.refresh_every:
            self.set_interval(self.refresh_every, self._tick)

    def _tick(self) -> None:
        if self.app.screen is not self:  # no background re-reads while another screen covers the list
            return
        from ehrdebug.runstore.reader import STALE_AFTER_S

        now = time.time()
        for row in list(self.rows.values()):  # ages move on, and a silent live run turns stale
            if row.status == "live" and now - row.last_update > STALE_AFTER_S:
                row.status = "stale"
            self._put_row(row)
        self._load()

    # -- loading --------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._computed.clear()
        self._load()

    def _due(self, run: Any) -> bool:
        """Recompute a row only when its run changed, and a slow one (a huge log) less often."""
        last = self._computed.get(str(run.path))
        if last is None:
            return True
        mtime, when, cost = last
        return float(run.last_update or 0) != mtime and time.monotonic() - when > max(
            self.refresh_every, 10 * cost
        )

    @work(thread=True, exclusive=True, group="runs-load")
    def _load(self) -> None:
        from ehrdebug.errors import UserError
        from ehrdebug.tui import services

        try:
            runs = services.discover_runs(self.root)
        except UserError as exc:
            self.app.call_from_thread(self._set_status, f"[red]{exc}[/]")
            return
        for run in runs:
            self.runs[str(run.path)] = run
        # cheap rows first (name, kind, updated), then the figures that need the log
        for run in runs:
            name = _display_name(run.path, self.root)
            row = RunRow(str(run.path), name, run.kind, "…", "", "…", float(run.last_update or 0))
            if str(run.path) not in self.rows:
                self.app.call_from_thread(self._put_row, row)
        for run in runs:
            if not self._due(run):
                continue
            started = time.monotonic()
            row = run_row(run, _display_name(run.path, self.root))
            self._computed[str(run.path)] = (row.last_update, time.monotonic(), time.monotonic() - started)
            self.app.call_from_thread(self._put_row, row)
        n = len(runs)
        self.app.call_from_thread(
            self._set_status, f"{n} run{'s' if n != 1 else ''}" if n else "no runs found here"
        )

    def _set_status(self, text: str) -> None:
        self.query_one("#runs-status", Static).update(text)

    def _put_row(self, row: RunRow) -> None:
        table = self.query_one(DataTable)
        now = time.time()
        cells = list(row.cells(now))
        mark = "● " if row.path in self.marked else ""
        cells[0] = Text(mark + cells[0], style="bold" if mark else "")
        cells[1] = Text(row.status, style=STATUS_STYLE.get(row.status, ""))
        if row.path in self.rows:
            for col, value in zip(COLUMNS, cells, strict=False):
                table.update_cell(row.path, col, value, update_width=True)
        else:
            table.add_row(*cells, key=row.path)
        self.rows[row.path] = row

    # -- actions --------------------------------------------------------------------------------
    def selected_run(self) -> Any:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.runs.get(str(key))

    def marked_runs(self) -> list[Any]:
        return [self.runs[p] for p in self.marked if p in self.runs]

    def action_open(self, screen: str) -> None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected.", severity="warning")
            return
        self.app.open_screen(screen, run)  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open("live")

    def action_mark(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        path = str(run.path)
        if path in self.marked:
            self.marked.remove(path)
        else:
            self.marked.append(path)
        self._put_row(self.rows[path])
        self._set_status(f"{len(self.marked)} marked for compare (c)")

    def action_compare(self) -> None:
        runs = self.marked_runs()
        if len(runs) < 2:
            self.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        self.app.open_screen("compare", runs=runs)  # type: ignore[attr-defined]


def _display_name(path: Path, root: Path) -> str:
    try:
        rel = Path(path).resolve().relative_to(root.resolve())
        return str(rel) if str(rel) != "." else Path(path).resolve().name
    except ValueError:
        return Path(path).name
