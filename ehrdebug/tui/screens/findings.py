"""Findings: probe results by severity with evidence and recipes; re-run the doctor from here.

The doctor runs as ``ehrdebug doctor RUN --format json`` (``services.start_doctor``) in a separate process
watched by a worker thread: the UI stays responsive, and cancelling really stops the work. What is shown
when the screen opens is ``services.saved_findings``: the run's logged findings and its newest doctor report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ehrdebug.tui.model import SEVERITY_STYLE
from ehrdebug.tui.services import DOCTOR_REPORT  # noqa: F401 - where the TUI keeps its copy (tests read it)


def finding_detail(finding: Any) -> Group:
    """Evidence, examples, the rule and the recipes of one finding, as Rich renderables."""
    from ehrdebug.tui import services

    sev = finding.severity.label
    parts: list[Any] = [
        Text.assemble((f"{sev.upper()} ", SEVERITY_STYLE.get(sev, "")), (finding.title, "bold"))
    ]
    parts.append(
        Text(f"{finding.probe}" + (f"  on {finding.subject}" if finding.subject else ""), style="dim")
    )
    if finding.evidence:
        table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in finding.evidence.items():
            table.add_row(str(key), _short(value))
        parts += [Text("evidence", style="bold underline"), table]
    if finding.examples:
        parts.append(Text("examples", style="bold underline"))
        for example in finding.examples[:5]:
            parts.append(Text("• " + _short(example, 300)))
    if finding.rule:
        parts += [Text("rule", style="bold underline"), Text(finding.rule, style="italic")]
    if finding.recipes:
        parts.append(Text("recipes", style="bold underline"))
        for rid in finding.recipes:
            kind = "fix" if services.is_fix_recipe(rid) else "advice"
            parts.append(
                Text.assemble(
                    (f"{rid} ", "bold green" if kind == "fix" else "bold"),
                    (f"[{kind}] ", "dim"),
                    services.recipe_description(rid),
                )
            )
    return Group(*parts)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FindingsScreen(Screen[None]):
    HELP_TITLE = "Findings"
    HELP = (
        "Probe results, worst first, with their evidence, the rule applied and the recipes that answer them. "
        "d re-runs the doctor on the run (as `ehrdebug doctor RUN`) in a separate process (k cancels it); its "
        "report is kept in the run's artifacts/ folder and shown here the next time."
    )
    BINDINGS = [
        Binding("d", "doctor", "Run doctor"),
        Binding("k", "cancel", "Cancel"),
        Binding("x", "fix", "Fix these"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, run: Any, target: str | Path | None = None) -> None:
        super().__init__()
        self.run = run
        self.target = Path(target) if target else None
        self.findings: list[Any] = []
        self.source = ""
        self.proc: Any = None  # the doctor's process while it runs
        self.job: Worker[Any] | None = None
        self._job_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Findings — {self.run.name}", id="findings-title", classes="screen-title")
        with Horizontal(id="findings-body"):
            yield DataTable(id="findings-table", cursor_type="row")
            with VerticalScroll(id="finding-detail"):
                yield Static("", id="finding-text")
        yield Static("", id="findings-job", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("sev", key="sev", width=5)
        table.add_column("finding", key="title")
        table.add_column("probe", key="probe")
        self._load()

    @work(thread=True, exclusive=True, group="findings-load")
    def _load(self) -> None:
        from ehrdebug.tui import services

        findings, source = services.saved_findings(self.run)
        self.app.call_from_thread(self.show_findings, findings, source)

    def show_findings(self, findings: list[Any], source: str) -> None:
        self.findings = sorted(findings, key=lambda f: -int(f.severity))
        self.source = source
        table = self.query_one(DataTable)
        table.clear()
        for i, f in enumerate(self.findings):
            sev = f.severity.label
            table.add_row(Text(sev, style=SEVERITY_STYLE.get(sev, "")), f.title, f.probe, key=str(i))
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.severity.label] = counts.get(f.severity.label, 0) + 1
        summary = "  ".join(
            f"{n} {s}"
            for s, n in sorted(counts.items(), key=lambda kv: -["ok", "info", "warn", "fail"].index(kv[0]))
        )
        self._set_job(f"{summary or 'no findings yet: press d to run the doctor'}  [dim]{source}[/]")
        self._show_detail(0)

    def _show_detail(self, index: int) -> None:
        text = self.query_one("#finding-text", Static)
        if 0 <= index < len(self.findings):
            text.update(finding_detail(self.findings[index]))
        else:
            text.update("")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self._show_detail(int(event.row_key.value))

    def _set_job(self, text: str) -> None:
        self.query_one("#findings-job", Static).update(text)

    # -- the doctor ------------------------------------------------------------------------------
    def action_doctor(self) -> None:
        if self.job is not None and self.job.state == WorkerState.RUNNING:
            self.notify("The doctor is already running (k cancels it).")
            return
        from ehrdebug.tui import services

        target = self.target or services.doctor_target(self.run)
        self._job_text = f"{services.describe_command(services.doctor_command(target))}  (k cancels)"
        self._set_job(f"[yellow]running[/] {self._job_text}")
        self.job = self._run_doctor(target)

    @work(thread=True, exclusive=True, group="doctor")
    def _run_doctor(self, target: Path) -> None:
        from ehrdebug.tui import services

        worker = get_current_worker()
        started = time.monotonic()
        job = services.start_doctor(target, self.run.artifacts_dir)
        self.proc = job.proc
        ticks = 0
        while job.running():
            ticks += 1
            if ticks % 10 == 0:
                elapsed = f"{time.monotonic() - started:.0f}s"
                self.app.call_from_thread(self._set_job, f"[yellow]running {elapsed}[/] {self._job_text}")
            if worker.is_cancelled:
                job.cancel()
                self.app.call_from_thread(self._set_job, "[yellow]doctor cancelled[/]")
                return
            time.sleep(0.1)
        try:
            report = job.report()
        except ValueError as exc:
            self.app.call_from_thread(self._set_job, f"[red]{exc}[/]")
            return
        logged = list(self.run.findings())
        elapsed = time.monotonic() - started
        self.app.call_from_thread(self.show_findings, report.findings + logged, f"doctor report, {elapsed:.1f}s")

    def action_cancel(self) -> None:
        if self.job is not None and self.job.state == WorkerState.RUNNING:
            self.job.cancel()
            self._set_job("[yellow]cancelling…[/]")
        else:
            self.notify("Nothing to cancel.")

    def action_fix(self) -> None:
        self.app.open_screen("fix", self.run)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.pop_screen()
