"""Pilot tests of the TUI screens: navigation, bindings, workers and their effect on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ehrdebug.findings import Finding, Severity
from ehrdebug.tui.app import EhrDebugApp

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tui_simulate.py (test scaffolding)


def _finding_run(root: Path) -> Path:
    from ehrdebug.runstore import RunLogger

    path = root / "bart-broken"
    with RunLogger(
        path, {"max_steps": 3, "num_epochs": 30}, architecture="BartForConditionalGeneration"
    ) as log:
        for step in (1, 2, 3):
            log.log_train(step, loss=1.0 / step, lr=1e-4, epoch=step / 3)
        log.log_eval(3, {"eval_loss": 0.9})
        log.log_findings(
            3,
            [
                Finding(
                    "tokenizer.structural",
                    Severity.FAIL,
                    "<demo> is cut into 4 pieces",
                    evidence={"pieces": ["Ġ<", "dem", "o", ">"]},
                    recipes=["register-structural-tokens"],
                    rule="structural tokens must be one piece",
                ),
                Finding(
                    "curves.memorization",
                    Severity.WARN,
                    "train loss 0.0004: memorising",
                    evidence={"final_loss": 0.0004},
                    recipes=["early-stopping", "add-validation-set"],
                ),
                Finding("data.labels", Severity.OK, "labels look fine"),
            ],
        )
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tui_simulate import write_run, write_tokenizer_run

    base = tmp_path_factory.mktemp("runs")
    write_run(base / "healthy", steps=60, eval_every=10, alert_at=50)
    _finding_run(base)
    write_tokenizer_run(base / "toks")
    return base


def _text(widget) -> str:  # type: ignore[no-untyped-def]
    """What a Static shows, as plain text (Rich renderables included)."""
    import io

    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def _select(app: EhrDebugApp, name: str) -> None:
    from textual.widgets import DataTable

    table = app.screen.query_one(DataTable)
    keys = [str(k.value) for k in table.rows]
    index = next(i for i, k in enumerate(keys) if Path(k).name == name)
    table.move_cursor(row=index)


async def _wait(pilot, cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    import time

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def test_runs_lists_every_run_with_status(root: Path) -> None:
    app = EhrDebugApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _wait(
            pilot, lambda: len(screen.rows) == 3 and all(r.status != "…" for r in screen.rows.values())
        )
        rows = {Path(p).name: r for p, r in screen.rows.items()}
        assert rows["healthy"].status == "finished"
        assert rows["bart-broken"].architecture == "BartForConditionalGeneration"
        assert rows["healthy"].best.startswith("0.")  # best eval loss with its step
        # help screen lists this screen's keys, and closes again
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert type(app.screen).__name__ == "RunsScreen"
        # mark two runs and compare them
        _select(app, "healthy")
        await pilot.press("space")
        _select(app, "bart-broken")
        await pilot.press("space")
        await pilot.press("c")
        await _wait(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        cmp = app.screen
        await _wait(pilot, lambda: len(cmp.histories) == 2)
        assert len(cmp.query_one("#cmp-plot").curves) == 2
        config_rows = [
            cmp.query_one("#cmp-config").get_row_at(i)[0]
            for i in range(cmp.query_one("#cmp-config").row_count)
        ]
        assert "max_steps" in config_rows and "num_epochs" in config_rows
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code in (0, None)


async def test_live_screen_shows_curves_samples_alerts(root: Path) -> None:
    app = EhrDebugApp(root / "healthy")  # one run: the live screen opens directly
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait(pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None)
        live = app.screen
        assert live.state.last_step == 60 and live.state.state == "finished"
        labels = [c.label for c in live.query_one("#live-plot").curves]
        assert labels == ["train", "eval_loss"]
        assert live._alerts_shown == 1 and live._samples_shown == 6
        await pilot.press("m")  # next view: learning rate
        assert live.query_one("#live-plot").curves[0].label == "lr"
        await pilot.press("p")
        assert live.following is False


async def test_findings_screen_and_doctor_worker(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ehrdebug.findings import Report
    from ehrdebug.tui import services
    from ehrdebug.tui.screens.findings import DOCTOR_REPORT

    report = Report(
        "ckpt",
        [
            Finding(
                "model.special_token_probability",
                Severity.FAIL,
                "P(<v>) = 0.000045 after the prompt",
                evidence={"p": 4.5e-05},
                recipes=["init-new-embeddings-mean"],
            )
        ],
    )
    report_file = root / "fake-report.json"
    report_file.write_text(json.dumps(report.to_dict()))
    script = f"print(open({str(report_file)!r}).read())"
    monkeypatch.setattr(services, "doctor_command", lambda path: [sys.executable, "-c", script])
    run_dir = root / "bart-broken"
    (run_dir / "artifacts" / DOCTOR_REPORT).unlink(missing_ok=True)
    app = EhrDebugApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait(pilot, lambda: len(app.screen.rows) == 3)
        _select(app, "bart-broken")
        await pilot.press("f")
        await _wait(pilot, lambda: type(app.screen).__name__ == "FindingsScreen" and app.screen.findings)
        screen = app.screen
        assert [f.severity.label for f in screen.findings] == ["fail", "warn", "ok"]  # worst first
        detail = _text(screen.query_one("#finding-text"))
        assert "register-structural-tokens" in detail and "Ġ<" in detail
        await pilot.press("d")
        await _wait(
            pilot, lambda: (run_dir / "artifacts" / DOCTOR_REPORT).is_file() and len(screen.findings) == 4
        )
        assert screen.findings[0].title.startswith("P(<v>)") or screen.findings[1].title.startswith("P(<v>)")
        saved = json.loads((run_dir / "artifacts" / DOCTOR_REPORT).read_text())
        assert saved["findings"][0]["probe"] == "model.special_token_probability"


async def test_doctor_can_be_cancelled_and_ui_stays_responsive(
    root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ehrdebug.tui import services

    pid_file = tmp_path / "pid"
    script = f"import os,time; open({str(pid_file)!r},'w').write(str(os.getpid())); time.sleep(60)"
    monkeypatch.setattr(services, "doctor_command", lambda path: [sys.executable, "-c", script])
    app = EhrDebugApp(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait(pilot, lambda: len(app.screen.rows) == 3)
        _select(app, "healthy")
        await pilot.press("f")
        await _wait(pilot, lambda: type(app.screen).__name__ == "FindingsScreen")
        screen = app.screen
        await pilot.press("d")
        await _wait(pilot, lambda: pid_file.is_file() and pid_file.read_text() != "")
        await pilot.press("question_mark")  # the UI answers while the doctor runs
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("k")
        await _wait(pilot, lambda: screen.proc is not None and screen.proc.poll() is not None)
        assert "cancel" in _text(screen.query_one("#findings-job"))


async def test_token_inspector_shows_cut_structural_token_and_pad_loss(root: Path) -> None:
    from ehrdebug.tui import pieces as P

    app = EhrDebugApp(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait(pilot, lambda: len(app.screen.rows) == 3)
        _select(app, "toks")
        await pilot.press("t")
        await _wait(
            pilot,
            lambda: type(app.screen).__name__ == "TokensScreen" and app.screen.inspection is not None,
            60,
        )
        screen = app.screen
        assert "<demo>" in screen.inspection.broken  # not registered: cut into pieces
        assert any(
            p.kind == P.STRUCTURAL and p.piece == "<v>"
            for p in P.inspect_text(
                screen.tokenizer, "<v> 4019 <\\v>", screen.structural, screen.patterns
            ).pieces
        )
        await pilot.press("l")  # as a training batch: DataCollatorForSeq2Seq masks its own padding
        assert screen.labels is not None and not any(p.kind == P.PAD_LOSS for p in screen.labels.pieces)
        await pilot.press("p")  # max_length padding without -100: seed 002's bug
        assert any(p.kind == P.PAD_LOSS for p in screen.labels.pieces)
        assert "pad id" in " ".join(screen.labels.notes)
        await pilot.press("slash")
        await pilot.press(*"V3001", "enter")
        assert screen.text == "V3001" and screen.inspection.pieces


async def test_sampler_generates_with_step_probabilities(root: Path) -> None:
    app = EhrDebugApp(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait(pilot, lambda: len(app.screen.rows) == 3)
        _select(app, "toks")
        await pilot.press("s")
        await _wait(pilot, lambda: type(app.screen).__name__ == "SamplerScreen")
        screen = app.screen
        screen.query_one("#sampler-prompt").value = "56 ASIAN M <demo>"
        screen.query_one("#sampler-settings").value = "n=3 max=24"  # seeded: one row ends early (padded)
        await pilot.press("ctrl+g")
        await _wait(pilot, lambda: len(screen.generations) == 3, 60)
        first = screen.generations[0].steps[0]
        assert "<v>" in first.watch and 0.0 <= first.watch["<v>"] <= 1.0
        assert "P(<v>)" in _text(screen.query_one("#sampler-headline"))
        assert screen.query_one("#sampler-steps").row_count >= 1
        screen.query_one("#sampler-settings").value = "n=zero"
        await pilot.press("ctrl+g")
        assert "not a number" in _text(screen.query_one("#sampler-headline"))


def test_cli_rejects_bad_paths(tmp_path: Path) -> None:
    from ehrdebug.cli.app import main

    assert main(["tui", str(tmp_path / "missing")]) == 2
    file = tmp_path / "f.txt"
    file.write_text("x")
    assert main(["tui", str(file)]) == 2


async def test_hf_trainer_output_dir_is_listed_and_opened(tmp_path: Path) -> None:
    out = tmp_path / "hf-t5"
    ckpt = out / "checkpoint-20"
    ckpt.mkdir(parents=True)
    log = [{"step": s, "loss": 3.0 / s, "learning_rate": 1e-4, "epoch": s / 10} for s in range(1, 21)]
    log += [{"step": 10, "eval_loss": 1.2, "epoch": 1.0}, {"step": 20, "eval_loss": 0.9, "epoch": 2.0}]
    (ckpt / "trainer_state.json").write_text(
        json.dumps({"global_step": 20, "max_steps": 40, "log_history": log})
    )
    (ckpt / "config.json").write_text(json.dumps({"architectures": ["T5ForConditionalGeneration"]}))
    app = EhrDebugApp(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await _wait(pilot, lambda: len(screen.rows) == 1 and next(iter(screen.rows.values())).status != "…")
        row = next(iter(screen.rows.values()))
        assert (row.kind, row.architecture, row.best) == ("hf", "T5ForConditionalGeneration", "0.9 @20")
        await pilot.press("enter")
        await _wait(pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None)
        live = app.screen
        assert live.state.last_step == 20 and live.state.lr == 1e-4
        assert [c.label for c in live.query_one("#live-plot").curves] == ["train", "eval_loss"]


async def test_command_palette_opens_screens_and_q_goes_back(root: Path) -> None:
    app = EhrDebugApp(root / "bart-broken")
    async with app.run_test(size=(80, 24)) as pilot:
        await _wait(pilot, lambda: type(app.screen).__name__ == "LiveScreen")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Findings")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await _wait(pilot, lambda: type(app.screen).__name__ == "FindingsScreen")
        await pilot.press("q")
        assert type(app.screen).__name__ == "LiveScreen"
        await pilot.press("q")  # back to the list of runs, read only now that it is shown
        await _wait(pilot, lambda: type(app.screen).__name__ == "RunsScreen" and len(app.screen.rows) == 1)
        await pilot.press("q")
    assert not app.is_running
