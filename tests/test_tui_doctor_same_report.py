"""One doctor everywhere: ``ehrdebug doctor RUN`` and the TUI (its service, in process and as the Findings
screen's separate process) give the same findings for the same ehrdebug run, and the Findings screen shows
the doctor report the run's artifacts/ already hold instead of "no findings yet"."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ehrdebug.cli.app import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_loop import TINY, write_standin  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def comparable(findings: list[Any]) -> list[tuple[Any, ...]]:
    """What a reader sees of each finding (timings are not findings)."""
    rows = []
    for f in findings:
        d = f if isinstance(f, dict) else f.to_dict()
        evidence = {k: v for k, v in (d.get("evidence") or {}).items() if k != "seconds"}
        rows.append((d["probe"], d["severity"], d["title"], d.get("subject", ""), tuple(d.get("recipes") or ()),
                     json.dumps(evidence, sort_keys=True, default=str)))
    return sorted(rows)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny BART run written by the training recipe (run.json config, checkpoints, ehrdebug.toml)."""
    from recipes.train import load_recipe_config, run_training

    tmp = tmp_path_factory.mktemp("same-report")
    data = write_standin(tmp / "data")
    config = load_recipe_config(str(REPO / "recipes/configs/bart_ehrgen_small.yaml"),
                                [*TINY, f"data.root={data}", f"out={tmp / 'runs' / 'bart'}"])
    return Path(run_training(config))


def test_cli_and_tui_service_give_identical_findings(recipe_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.tui import services

    assert main(["doctor", str(recipe_run), "--format", "json"]) in (0, 1)
    cli = json.loads(capsys.readouterr().out)
    assert cli["meta"]["suites"]["model"]["ran"] and cli["meta"]["decoding"]["eos"] == "<END>"

    run = services.open_run(recipe_run)
    assert services.doctor_target(run) == recipe_run  # the run itself, as the CLI was given, not a checkpoint
    in_process = services.diagnose(services.doctor_target(run))
    job = services.start_doctor(services.doctor_target(run), run.artifacts_dir)  # what the Findings screen runs
    deadline = time.monotonic() + 300
    while job.running():
        assert time.monotonic() < deadline, "the doctor process did not finish"
        time.sleep(0.2)
    screen_report = job.report()

    assert comparable(cli["findings"]) == comparable(in_process.findings) == comparable(screen_report.findings)
    tf = [f for f in screen_report.findings if f.probe == "generation.tf_vs_sampling"]
    assert tf and tf[0].evidence["decoding_source"].startswith("the run's config")


async def test_findings_screen_shows_the_saved_doctor_report(recipe_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.tui.app import EhrDebugApp

    main(["doctor", str(recipe_run), "--format", "json"])
    cli = json.loads(capsys.readouterr().out)
    (recipe_run / "artifacts" / "doctor-report.json").unlink(missing_ok=True)  # only the CLI's artifacts/doctor/
    from tui_simulate import open_findings_screen

    app = EhrDebugApp(recipe_run.parent)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_findings_screen(app, pilot, timeout=20)
        screen = app.screen
        assert screen.source.startswith("doctor report")
        assert comparable(screen.findings) == comparable(cli["findings"])
