"""The help screen: the keys of the screen it was opened from, the global keys and the screens."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

# every screen of the app, one line each (the app and the help screen both read it)
SCREENS_HELP = [
    ("Runs", "every run under the folder, with status, architecture, best validation metric"),
    ("Live run", "curves, learning rate, throughput, ETA, samples and alerts, followed live"),
    ("Findings", "probe results by severity with evidence and recipes; re-run the doctor"),
    ("Token inspector", "token pieces coloured: structural tokens, codes, which labels carry loss"),
    ("Sampler", "a prompt → generations with per-step top-k and the structural token's probability"),
    ("Fix and retrain", "pick findings, preview fixes, apply to a copy, retrain, compare"),
    ("Compare", "two or more runs side by side: curves, final metrics, config differences"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", key_display="esc")]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self._content(), id="help-text")

    def _content(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        title = getattr(self.under, "HELP_TITLE", type(self.under).__name__)
        table.add_row(Text(title, style="bold"), Text(getattr(self.under, "HELP", "") or ""))
        table.add_row("", "")
        seen: set[str] = set()
        for binding in [*getattr(self.under, "BINDINGS", []), *self.app.BINDINGS]:
            if not isinstance(binding, Binding) or binding.action in seen:
                continue
            seen.add(binding.action)
            keys = binding.key_display or binding.key.replace(",", " / ")
            table.add_row(keys, binding.description or binding.action)
        table.add_row("ctrl+p", "command palette: open any screen, theme, quit")
        table.add_row("tab / shift+tab", "move between panels; arrows move inside one")
        table.add_row("", "")
        table.add_row(Text("Screens", style="bold"), "")
        for name, text in SCREENS_HELP:
            table.add_row(name, text)
        return table

    def action_close(self) -> None:
        self.dismiss()
