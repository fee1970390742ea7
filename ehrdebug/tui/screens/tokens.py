"""Token inspector: an example's token pieces coloured, their ids, structural tokens, codes and loss.

A structural token cut into pieces (seed 000's ``<demo>`` → ``Ġ< dem o >``) and a pad id that carries
loss in the labels (seed 002) are shown white on red, with a one-line verdict above the pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static

from ehrdebug.tui import pieces as P

MAX_EXAMPLES = 50


def render_pieces(inspection: P.Inspection, show_ids: bool = False) -> Text:
    """Pieces side by side; plain text pieces alternate two shades so every boundary is visible, and a
    long run of the same padding piece is folded to ``<pad> <pad> ×N`` (its colour still says it all)."""
    text = Text()
    items = inspection.pieces
    i = 0
    while i < len(items):
        piece = items[i]
        run = 1
        while i + run < len(items) and (items[i + run].id, items[i + run].kind) == (piece.id, piece.kind):
            run += 1
        foldable = piece.kind in (P.PAD_LOSS, P.MASKED) or piece.id == -1
        shown = 2 if foldable and run > 4 else run
        style = P.STYLE.get(piece.kind, "")
        for j in range(i, i + shown):
            p = items[j]
            if p.kind == P.TEXT:
                style = "on grey23" if p.index % 2 else "on grey35"
            label = p.piece if p.kind != P.MASKED else "·"
            text.append(label + (f"₍{p.id}₎" if show_ids else ""), style=style)
            text.append(" ")
        if shown < run:
            text.append(f"×{run - shown} more", style=P.STYLE.get(piece.kind, "") or "dim")
            text.append(" ")
        i += run
    return text


def legend() -> Text:
    text = Text("legend: ", style="dim")
    for kind, words in P.LEGEND.items():
        text.append(f" {words} ", style=P.STYLE[kind] or "")
        text.append(" ")
    return text


def verdict(inspection: P.Inspection, labels: P.Inspection | None) -> Text:
    lines = Text()
    for token, parts in inspection.broken.items():
        lines.append(
            f"✗ {token} is cut into {len(parts)} pieces {parts}: not a single token\n", style="bold red"
        )
    if inspection.codes_cut:
        total = len(inspection.codes_cut) + inspection.codes_whole
        lines.append(f"! {len(inspection.codes_cut)}/{total} codes cut into pieces\n", style="yellow")
    if labels is not None:
        for note in labels.notes:
            bad = note in labels.problems
            lines.append(("✗ " if bad else "• ") + note + "\n", style="bold red" if bad else "")
        if not labels.pad_loss:
            lines.append("✓ no padding position carries loss\n", style="green")
    if not lines:
        lines.append("✓ no structural token or code is cut\n", style="green")
    return lines


class TokensScreen(Screen[None]):
    HELP_TITLE = "Token inspector"
    HELP = (
        "Type a text (Enter) or pick an example: its token pieces under the run's tokenizer, coloured by "
        "what they are. l shows the example as a training batch (the data probes' featurisation and the "
        "standard collator) with the positions that carry loss; p toggles max_length padding, i shows ids."
    )
    BINDINGS = [
        Binding("slash", "focus_input", "Type", key_display="/"),
        Binding("e", "focus_examples", "Examples"),
        Binding("l", "toggle_labels", "Labels"),
        Binding("p", "toggle_padding", "Padding"),
        Binding("i", "toggle_ids", "Ids"),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(
        self, run: Any, tokenizer_path: str | Path | None = None, examples: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__()
        self.run = run
        self.tokenizer_path = tokenizer_path
        self.tokenizer: Any = None
        self.examples: list[dict[str, Any]] = list(examples or [])
        self.record: dict[str, Any] = {}
        self.text = ""
        self.show_labels = False
        self.padding = "none"
        self.show_ids = False
        self.inspection: P.Inspection | None = None
        self.labels: P.Inspection | None = None
        self.structural: list[str] = []
        self.patterns: list[Any] = []
        self.config: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Token inspector — {self.run.name}", classes="screen-title", id="tok-title")
        yield Input(placeholder="/ to type a text, Enter to inspect it", id="tok-input", compact=True)
        with Horizontal(id="tok-body"):
            yield OptionList(id="tok-examples")
            with VerticalScroll(id="tok-view"):
                yield Static("loading the tokenizer…", id="tok-pieces")
                yield DataTable(id="tok-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#tok-table", DataTable)
        for col in ("#", "id", "piece", "kind", "label"):
            table.add_column(col, key=col)
        self._load()

    @work(thread=True, exclusive=True, group="tok-load")
    def _load(self) -> None:
        from ehrdebug.grammar import STRUCTURAL_TOKENS
        from ehrdebug.tui import services

        path = self.tokenizer_path or services.checkpoint_for(self.run)
        try:
            tokenizer = services.load_tokenizer(path)
        except Exception as exc:  # noqa: BLE001 - shown, not raised: the screen stays usable
            tok_info = (self.run.info or {}).get("tokenizer")
            tokenizer = None
            if tok_info:
                try:
                    tokenizer = services.load_tokenizer(tok_info)
                except Exception:  # noqa: BLE001
                    tokenizer = None
            if tokenizer is None:
                self.app.call_from_thread(self._show_error, f"cannot load a tokenizer from {path}: {exc}")
                return
        config = services.project_config(self.run.path)
        examples = self.examples or _examples_of(self.run)
        texts = [P.example_fields(r, config.text_field, config.target_field)[0] for r in examples]
        structural = list(config.structural_tokens) or [
            t for t in STRUCTURAL_TOKENS if any(t in x for x in texts)
        ]
        added = [
            t
            for t in getattr(tokenizer, "get_added_vocab", dict)()
            if t.startswith("<") and t not in structural
        ]
        structural += [t for t in added if t not in getattr(tokenizer, "all_special_tokens", [])]
        patterns = P.code_patterns(config.code_systems or None, texts)
        self.app.call_from_thread(self._ready, tokenizer, config, examples, structural, patterns)

    def _show_error(self, message: str) -> None:
        self.query_one("#tok-pieces", Static).update(Text(message, style="red"))

    def _ready(
        self,
        tokenizer: Any,
        config: Any,
        examples: list[dict[str, Any]],
        structural: list[str],
        patterns: list[Any],
    ) -> None:
        self.tokenizer, self.config, self.examples = tokenizer, config, examples
        self.structural, self.patterns = structural, patterns
        options = self.query_one(OptionList)
        for record in examples:
            text, target = P.example_fields(record, config.text_field, config.target_field)
            options.add_option(_clip(text or str(record), 60))
        if examples:
            options.highlighted = 0
            options.focus()
            self.select_example(0)
        else:
            self.query_one("#tok-pieces", Static).update("No examples found in the run: type a text above.")
            self.query_one(Input).focus()

    # -- choosing what to inspect -----------------------------------------------------------------
    def select_example(self, index: int) -> None:
        if not (0 <= index < len(self.examples)):
            return
        self.record = dict(self.examples[index])
        self.text = P.example_fields(self.record, self.config.text_field, self.config.target_field)[0]
        self.refresh_view()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.select_example(event.option_index)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.text = event.value
        self.record = {"text": event.value}
        self.refresh_view()

    def refresh_view(self) -> None:
        if self.tokenizer is None:
            return
        self.inspection = P.inspect_text(self.tokenizer, self.text, self.structural, self.patterns)
        shown = self.inspection
        self.labels = None
        notes: list[str] = []
        if self.show_labels:
            try:
                model_type = P.model_type_of(
                    getattr(self.run, "architecture", ""), str((self.run.info or {}).get("task", ""))
                )
                input_ids, labels, notes = P.training_example(
                    self.tokenizer, self.record, model_type, config=self.config, padding=self.padding
                )
                if labels is not None:
                    aligned = input_ids if model_type != "seq2seq" else None
                    self.labels = P.inspect_labels(self.tokenizer, labels, aligned)
            except Exception as exc:  # noqa: BLE001 - e.g. a seq2seq record without a target
                notes = [f"cannot build a training example: {exc}"]
        header = Text.assemble(
            (f"{len(shown.pieces)} pieces", "bold"),
            f"  structural: {' '.join(self.structural) or '-'}",
            style="",
        )
        parts: list[Any] = [header, verdict(shown, self.labels), render_pieces(shown, self.show_ids)]
        if self.labels is not None:
            parts += [
                Text(f"\nlabels (padding={self.padding}):", style="bold"),
                render_pieces(self.labels, self.show_ids),
            ]
        parts += [Text("\n".join(notes), style="dim"), legend()]
        self.query_one("#tok-pieces", Static).update(Group(*parts))
        self._fill_table(self.labels if self.labels is not None else shown)

    def _fill_table(self, inspection: P.Inspection) -> None:
        table = self.query_one("#tok-table", DataTable)
        table.clear()
        for piece in inspection.pieces[:2000]:
            label = "" if piece.label is None else str(piece.label)
            table.add_row(
                str(piece.index),
                str(piece.id),
                Text(piece.piece, style=P.STYLE.get(piece.kind, "")),
                piece.kind + (f" ({piece.unit})" if piece.unit else ""),
                label,
            )

    # -- actions -------------------------------------------------------------------------------
    def action_focus_input(self) -> None:
        self.query_one(Input).focus()

    def action_focus_examples(self) -> None:
        self.query_one(OptionList).focus()

    def action_toggle_labels(self) -> None:
        self.show_labels = not self.show_labels
        self.refresh_view()

    def action_toggle_padding(self) -> None:
        self.padding = "max_length" if self.padding == "none" else "none"
        self.show_labels = True
        self.refresh_view()

    def action_toggle_ids(self) -> None:
        self.show_ids = not self.show_ids
        self.refresh_view()

    def action_back(self) -> None:
        if self.focused is self.query_one(Input):
            self.query_one(OptionList).focus()
            return
        self.app.pop_screen()


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _examples_of(run: Any) -> list[dict[str, Any]]:
    """Records of the run's training data (run.json ``data``), then the prompts/outputs it sampled."""
    out: list[dict[str, Any]] = []
    data = (run.info or {}).get("data")
    paths = (
        [data]
        if isinstance(data, str)
        else list(data.values())
        if isinstance(data, dict)
        else data
        if isinstance(data, list)
        else []
    )
    for path in paths:
        if isinstance(path, str) and Path(path).is_file():
            try:
                from ehrdebug.io.tables import iter_records

                for i, record in enumerate(iter_records(path)):
                    if i >= MAX_EXAMPLES:
                        break
                    out.append(dict(record))
            except Exception:  # noqa: BLE001 - an unreadable data file leaves the samples
                pass
            break
    try:
        for sample in run.samples()[-10:]:
            if sample.get("output"):
                out.append({"text": str(sample["output"]), "source": "sample"})
    except Exception:  # noqa: BLE001
        pass
    return out
