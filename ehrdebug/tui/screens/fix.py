"""Fix and retrain: pick findings' fixes → preview each change → apply to a copy → retrain in a separate
process → follow it live → compare before and after.

Everything goes through ``ehrdebug.tui.services`` (the same planner, ``preview`` and ``apply_fixes`` as
``ehrdebug fix``) and the retraining is ``ehrdebug train FIXED/config.yaml`` started as its own process, so
closing the TUI never loses a training run and the fixed copy never touches the original.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, SelectionList, Static
from textual.widgets.selection_list import Selection


def plan_fixes(findings: list[Any]) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """The service's fix planner (kept importable here for the screen's callers)."""
    from ehrdebug.tui import services

    return services.plan_fixes(findings)


class FixScreen(Screen[None]):
    HELP_TITLE = "Fix and retrain"
    HELP = (
        "Fixes named by the run's warn/fail findings come first, ticked. space ticks/unticks, the preview shows "
        "what each ticked fix changes. a applies them to a new copy (RUN-fixed), r starts `ehrdebug train` on the "
        "fixed config as a separate process and opens it live, k stops that process, c compares before/after."
    )
    BINDINGS = [
        Binding("v", "preview", "Preview"),
        Binding("a", "apply", "Apply"),
        Binding("r", "retrain", "Retrain"),
        Binding("k", "kill", "Stop", show=False),
        Binding("c", "compare", "Compare"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(
        self, run: Any, out_dir: str | Path | None = None, train_overrides: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.run = run
        self.out_dir = Path(out_dir) if out_dir else None
        self.train_overrides = dict(train_overrides or {})
        self.result: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.new_run_dir: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Fix and retrain — {self.run.name}", classes="screen-title")
        with Horizontal(id="fix-body"):
            yield SelectionList[str](id="fix-list")
            with VerticalScroll(id="fix-preview"):
                yield Static("loading findings…", id="fix-preview-text")
        yield RichLog(id="fix-log", wrap=True, markup=False, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#fix-log", RichLog).border_title = "log"
        self._load()

    @work(thread=True, exclusive=True, group="fix-load")
    def _load(self) -> None:
        from ehrdebug.tui import services

        findings, _ = services.saved_findings(self.run)
        rows, advice = services.plan_fixes(findings)
        self.app.call_from_thread(self._fill, rows, advice, len(findings))

    def _fill(self, rows: list[tuple[str, str, bool]], advice: list[str], n_findings: int) -> None:
        from ehrdebug.tui import services

        options = self.query_one(SelectionList)
        for rid, why, chosen in rows:
            label = Text.assemble((rid, "bold" if chosen else ""), ("  " + why[:70], "dim"))
            options.add_option(Selection(label, rid, chosen))
        options.focus()
        log = self.query_one("#fix-log", RichLog)
        picked = sum(1 for r in rows if r[2])
        log.write(f"{n_findings} findings; {picked} fixes ticked from warn/fail findings")
        for rid in advice:
            log.write(f"advice {rid}: {services.recipe_description(rid)}")
        self.action_preview()

    def selected(self) -> list[str]:
        return list(self.query_one(SelectionList).selected)

    def on_selection_list_selection_toggled(self, event: Any) -> None:
        self.action_preview()

    # -- preview / apply ----------------------------------------------------------------------------
    def action_preview(self) -> None:
        self._preview(self.selected())

    @work(thread=True, exclusive=True, group="fix-preview")
    def _preview(self, ids: list[str]) -> None:
        from ehrdebug.errors import UserError
        from ehrdebug.tui import services

        text = Text()
        if not ids:
            text.append("Tick fixes with space to see what they change.", style="dim")
        else:
            try:
                previews = services.preview_fixes(self.run.path, ids)
            except UserError as exc:
                self.app.call_from_thread(self._set_preview, Text(str(exc), style="red"))
                return
            for rid, lines in previews:
                text.append(f"{rid}\n", style="bold green")
                for line in lines:
                    text.append(f"  {line}\n")
        self.app.call_from_thread(self._set_preview, text)

    def _set_preview(self, text: Text) -> None:
        self.query_one("#fix-preview-text", Static).update(text)

    def _log(self, line: str | Text) -> None:
        self.query_one("#fix-log", RichLog).write(line)

    def action_apply(self) -> None:
        from ehrdebug.tui import services

        ids = self.selected()
        if not ids:
            self.notify("Tick at least one fix (space).", severity="warning")
            return
        out = services.fix_out_dir(self.run.path, self.out_dir)
        self._log(f"applying {', '.join(ids)} to a copy in {out} …")
        self._apply(ids, out)

    @work(thread=True, exclusive=True, group="fix-apply")
    def _apply(self, ids: list[str], out: Path) -> None:
        from ehrdebug.errors import UserError
        from ehrdebug.tui import services

        try:
            result = services.apply_fixes(self.run.path, ids, out)
        except UserError as exc:
            self.app.call_from_thread(self._log, Text(f"cannot apply: {exc}", style="red"))
            return
        self.result = result
        for line in result.lines():
            self.app.call_from_thread(self._log, line)
        self.app.call_from_thread(self._log, Text(f"wrote {result.out_dir}", style="green"))
        if result.config_path:
            self.app.call_from_thread(self._log, f"next: r retrains with {result.config_path}")

    # -- retrain / follow / compare ----------------------------------------------------------------
    def action_retrain(self) -> None:
        from ehrdebug.tui import services

        if self.result is None or self.result.config_path is None:
            self.notify("Apply fixes that change the training config first (a).", severity="warning")
            return
        if self.proc is not None and self.proc.poll() is None:
            self.notify("Retraining is already running (k stops it).")
            return
        self.new_run_dir = services.retrain_run_dir(self.result, self.train_overrides)
        cmd = services.train_command(self.result.config_path, self.train_overrides)
        log_path = Path(self.result.out_dir) / "train.log"
        self.proc = services.spawn(cmd, log_path)
        self._log(f"started {services.describe_command(cmd)} (pid {self.proc.pid}, log {log_path})")
        self._follow_when_ready()

    @work(thread=True, exclusive=True, group="fix-follow")
    def _follow_when_ready(self) -> None:
        """Open the Live run screen as soon as the new run has written its first event."""
        from ehrdebug.tui import services

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and self.new_run_dir is not None:
            if (self.new_run_dir / "events.jsonl").is_file():
                run = services.open_run(self.new_run_dir)
                self.app.call_from_thread(self._open_live, run)
                return
            if self.proc is not None and self.proc.poll() is not None:
                self.app.call_from_thread(
                    self._log,
                    Text(f"training exited with {self.proc.returncode} before writing a run", style="red"),
                )
                return
            time.sleep(0.2)

    def _open_live(self, run: Any) -> None:
        self._log(Text(f"following {run.path} (c compares with the original)", style="green"))
        self.app.open_screen("live", run)  # type: ignore[attr-defined]

    def action_kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self._log("stopping the training process…")
        else:
            self.notify("No training process is running.")

    def action_compare(self) -> None:
        from ehrdebug.tui import services

        if self.new_run_dir is None or not (self.new_run_dir.exists()):
            self.notify("Retrain first (r): the comparison needs the new run.", severity="warning")
            return
        self.app.open_screen("compare", runs=[self.run, services.open_run(self.new_run_dir)])  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.pop_screen()
