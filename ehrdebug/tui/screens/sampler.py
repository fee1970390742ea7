"""Sampler: a prompt → several generations from the latest checkpoint under chosen decoding settings,
with per-step top-k probabilities and the probability of each structural token and of the EOS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ehrdebug.tui.sampling import Generation, Settings

SHORT = {
    "n": "num_samples",
    "max": "max_new_tokens",
    "temp": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "beams": "num_beams",
    "rep": "repetition_penalty",
    "sample": "do_sample",
    "block_eos": "block_eos",
    "seed": "seed",
}
DEFAULT_SETTINGS = "n=3 max=24 temp=1.0 top_k=50 top_p=1.0 beams=1 rep=1.0 block_eos=no"


def parse_settings(text: str) -> Settings:
    """``n=3 temp=0.8 block_eos=yes`` (short or full field names) → Settings; ValueError names the bad part."""
    values: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not key=value")
        name = SHORT.get(key, key)
        if name not in Settings.__dataclass_fields__:
            raise ValueError(f"unknown setting {key!r} (use {', '.join(SHORT)})")
        values[name] = value
    return Settings.parse(values)


class SamplerScreen(Screen[None]):
    HELP_TITLE = "Sampler"
    HELP = (
        "Generate from the latest checkpoint. Settings are key=value: n (samples), max (new tokens), temp, top_k, "
        "top_p, beams, rep (repetition penalty), block_eos (bad_words_ids=[[eos]]). Probabilities are the model's "
        "own softmax at each step; the watched tokens are the structural tokens and the EOS. n shows the next "
        "generation's steps; k cancels a running generation."
    )
    BINDINGS = [
        Binding("ctrl+g,f5", "generate", "Generate", key_display="^g", priority=True),
        Binding("ctrl+k", "cancel", "Cancel", key_display="^k", priority=True),
        Binding("ctrl+n", "next_generation", "Next", key_display="^n", priority=True),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, run: Any, checkpoint: str | Path | None = None, prompt: str = "") -> None:
        super().__init__()
        self.run = run
        self.checkpoint = checkpoint
        self.prompt = prompt
        self.model: Any = None
        self.tokenizer: Any = None
        self.generations: list[Generation] = []
        self.shown = 0
        self.job: Worker[Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Sampler — {self.run.name}", classes="screen-title")
        yield Input(
            self.prompt or "", placeholder="prompt, e.g. 56 ASIAN M <demo>", id="sampler-prompt", compact=True
        )
        yield Input(DEFAULT_SETTINGS, id="sampler-settings", compact=True)
        yield Static("", id="sampler-headline")
        yield RichLog(id="sampler-generations", wrap=True, markup=False, max_lines=100)
        yield DataTable(id="sampler-steps", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sampler-generations", RichLog).border_title = "generations"
        self.query_one("#sampler-prompt", Input).focus()
        if not self.prompt:
            self._default_prompt()

    @work(thread=True, group="sampler-prompt")
    def _default_prompt(self) -> None:
        """A prompt from the run's own samples (the part up to <demo>), so g works right away."""
        from ehrdebug.grammar import split_prompt

        try:
            samples = self.run.samples()
        except Exception:  # noqa: BLE001
            samples = []
        for sample in reversed(samples):
            prompt = str(sample.get("prompt") or split_prompt(str(sample.get("output", "")))[0])
            if prompt:
                self.app.call_from_thread(self._set_prompt, prompt)
                return

    def _set_prompt(self, prompt: str) -> None:
        field = self.query_one("#sampler-prompt", Input)
        if not field.value:
            field.value = prompt

    def _headline(self, text: Text | str) -> None:
        self.query_one("#sampler-headline", Static).update(text)

    # -- generating -------------------------------------------------------------------------------
    def action_generate(self) -> None:
        prompt = self.query_one("#sampler-prompt", Input).value
        try:
            settings = parse_settings(self.query_one("#sampler-settings", Input).value)
        except ValueError as exc:
            self._headline(Text(f"settings: {exc}", style="red"))
            return
        if not prompt.strip():
            self._headline(Text("type a prompt first", style="yellow"))
            return
        if self.job is not None and self.job.state == WorkerState.RUNNING:
            self.notify("Already generating (ctrl+k cancels).")
            return
        self._headline(Text("generating… (ctrl+k cancels)", style="yellow"))
        self.job = self._generate(prompt, settings)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_generate()

    @work(thread=True, exclusive=True, group="sampler")
    def _generate(self, prompt: str, settings: Settings) -> None:
        from ehrdebug.grammar import STRUCTURAL_TOKENS
        from ehrdebug.tui import sampling, services

        worker = get_current_worker()
        try:
            if self.model is None:
                path = self.checkpoint or services.checkpoint_for(self.run)
                self.app.call_from_thread(self._headline, Text(f"loading {path}…", style="yellow"))
                self.model, self.tokenizer = sampling.load_model(str(path))
            config = services.project_config(self.run.path)
            watch = list(config.structural_tokens or STRUCTURAL_TOKENS)
            if config.end_token and config.end_token not in watch:
                watch.append(config.end_token)
            gens = sampling.generate(
                self.model, self.tokenizer, prompt, settings, watch, should_stop=lambda: worker.is_cancelled
            )
        except Exception as exc:  # noqa: BLE001 - shown on the screen, the app keeps running
            self.app.call_from_thread(self._headline, Text(f"cannot generate: {exc}", style="red"))
            return
        if worker.is_cancelled:
            self.app.call_from_thread(self._headline, Text("cancelled", style="yellow"))
            return
        self.app.call_from_thread(self.show_generations, gens)

    def show_generations(self, gens: list[Generation]) -> None:
        self.generations = gens
        self.shown = 0
        log = self.query_one("#sampler-generations", RichLog)
        log.clear()
        for i, gen in enumerate(gens, 1):
            log.write(Text.assemble((f"{i}. ", "bold"), gen.text or "(empty)"))
        head = Text()
        if gens and gens[0].steps:
            head.append("after the prompt: ", style="dim")
            first = gens[0].steps[0]
            for name, prob in first.watch.items():
                head.append(
                    f"P({name})={prob:.6f}  ",
                    style="bold red" if prob < 0.01 else "bold green" if prob > 0.1 else "",
                )
            head.append(f"top: {first.top[0][0]} {first.top[0][1]:.3f}", style="dim")
        else:
            head.append(f"{len(gens)} generations (per-step probabilities need beams=1)", style="dim")
        self._headline(head)
        self._show_steps()

    def _show_steps(self) -> None:
        table = self.query_one("#sampler-steps", DataTable)
        table.clear(columns=True)
        if not self.generations:
            return
        gen = self.generations[self.shown % len(self.generations)]
        watch = list(gen.steps[0].watch) if gen.steps else []
        table.add_columns("#", "chosen", "p", "top-k", *(f"P({w})" for w in watch))
        for i, step in enumerate(gen.steps):
            top = " ".join(f"{p}:{v:.2f}" for p, v in step.top)
            table.add_row(
                str(i), step.chosen, f"{step.chosen_prob:.3f}", top, *(f"{step.watch[w]:.4f}" for w in watch)
            )
        table.border_title = (
            f"steps of generation {self.shown % len(self.generations) + 1}/{len(self.generations)}"
        )

    def action_next_generation(self) -> None:
        if self.generations:
            self.shown += 1
            self._show_steps()

    def action_cancel(self) -> None:
        if self.job is not None and self.job.state == WorkerState.RUNNING:
            self.job.cancel()
            self._headline(Text("cancelling…", style="yellow"))

    def action_back(self) -> None:
        self.app.pop_screen()
