"""The ehrdebug terminal UI: runs → live run → findings / tokens / sampler / fix / compare.

Keyboard-first: every screen lists its keys in the footer, ``?`` opens the help screen and ``ctrl+p``
the command palette, whose commands open each screen for the run under the cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ehrdebug.tui.screens.help import HelpScreen
from ehrdebug.tui.screens.runs import RunsScreen


class EhrDebugApp(App[None]):
    """``root`` is a folder of runs or one run; with one run the Live run screen opens directly."""

    TITLE = "ehrdebug"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "back_or_quit", "Back/Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, root: str | Path = ".", follow_interval: float = 1.0) -> None:
        super().__init__()
        self.root = Path(root)
        self.follow_interval = follow_interval
        self.current_run: Any = None
        self.first_read: Any = _start_first_read(self.root)

    def on_mount(self) -> None:
        from ehrdebug.tui import services

        self.sub_title = str(self.root)
        if self.root.is_dir() and services.is_run_dir(self.root):
            # one run opens on its Live run screen; the list of runs is built only if the user goes back
            # to it (composing it under the live view cost ~0.1 s of the open)
            run = self.first_read.run if self.first_read is not None else services.open_run(self.root)
            self.open_screen("live", run)
        else:
            self.push_screen(RunsScreen(self.root))

    # -- navigation used by every screen and by the command palette ----------------------------
    def open_screen(self, name: str, run: Any = None, **kwargs: Any) -> None:
        run = run if run is not None else self.current_run
        if name == "runs":
            self._show_runs()
            return
        if name == "compare":
            from ehrdebug.tui.screens.compare import CompareScreen

            runs = kwargs.get("runs") or ([run] if run is not None else [])
            self.push_screen(CompareScreen(runs))
            return
        if run is None:
            self.notify("Pick a run first (Runs screen, Enter).", severity="warning")
            return
        self.current_run = run
        self.push_screen(_make_screen(name, run, **kwargs))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def _show_runs(self) -> None:
        """Back to the list of runs: pop down to it, or put it in place of the run opened directly."""
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if not isinstance(self.screen_stack[-1], RunsScreen):
            self.switch_screen(RunsScreen(self.root))

    def action_back_or_quit(self) -> None:
        if len(self.screen_stack) > 2:
            self.pop_screen()
        elif not isinstance(self.screen, RunsScreen):
            self._show_runs()
        else:
            self.exit()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Runs", "Back to the list of runs", lambda: self.open_screen("runs"))
        for key, title, text in (
            ("live", "Live run", "Curves, throughput, ETA, samples and alerts of the current run"),
            ("findings", "Findings", "Probe results of the current run; re-run the doctor"),
            ("tokens", "Token inspector", "Token pieces of an example under the run's tokenizer"),
            ("sampler", "Sampler", "Generate from the latest checkpoint with chosen decoding settings"),
            ("fix", "Fix and retrain", "Preview and apply fixes to a copy, retrain, compare"),
        ):
            yield SystemCommand(title, text, lambda key=key: self.open_screen(key))
        yield SystemCommand("Compare", "Compare the marked runs (or the current run)", self._compare_marked)
        yield SystemCommand("Help", "Keys and screens", self.action_help)

    def _compare_marked(self) -> None:
        screen = self.screen_stack[1] if len(self.screen_stack) > 1 else None
        marked = screen.marked_runs() if isinstance(screen, RunsScreen) else []
        self.open_screen("compare", runs=marked or None)


def _start_first_read(root: Path) -> Any:
    """One run given: its log is read now, before Textual starts (a very large one in a thread; ``tui.preload``)."""
    from ehrdebug.errors import UserError
    from ehrdebug.tui import services

    try:
        if not (root.is_dir() and services.is_run_dir(root)):
            return None
        run = services.open_run(root)
    except (UserError, OSError):
        return None  # on_mount opens it again and shows what is wrong
    from ehrdebug.tui.preload import FirstRead

    return FirstRead(run)


def _make_screen(name: str, run: Any, **kwargs: Any) -> Screen[Any]:
    if name == "live":
        from ehrdebug.tui.screens.live import LiveScreen

        return LiveScreen(run, **kwargs)
    if name == "findings":
        from ehrdebug.tui.screens.findings import FindingsScreen

        return FindingsScreen(run, **kwargs)
    if name == "tokens":
        from ehrdebug.tui.screens.tokens import TokensScreen

        return TokensScreen(run, **kwargs)
    if name == "sampler":
        from ehrdebug.tui.screens.sampler import SamplerScreen

        return SamplerScreen(run, **kwargs)
    if name == "fix":
        from ehrdebug.tui.screens.fix import FixScreen

        return FixScreen(run, **kwargs)
    raise ValueError(f"unknown screen {name!r}")
