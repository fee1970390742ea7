"""Snapshots of the main screens at 80×24 (pytest-textual-snapshot; update with --snapshot-update).

Runs are written with fixed, old timestamps and opened by a relative path, so nothing in the pictures
depends on the clock or the temporary directory.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from ehrdebug.findings import Finding, Severity

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tui_simulate.py (test scaffolding)

SIZE = (80, 24)


def _write_run(path: Path, t0: float) -> None:
    import json

    from ehrdebug.runstore.events import encode_event

    path.mkdir(parents=True)
    (path / "checkpoints").mkdir()
    (path / "run.json").write_text(
        json.dumps(
            {"architecture": "BartForConditionalGeneration", "config": {"max_steps": 300, "num_epochs": 30}}
        )
    )
    lines = [encode_event("status", 0, {"state": "started"}, t=t0)]
    for step in range(1, 301):
        loss = 2.3 * 0.985**step + 0.0004
        lines.append(
            encode_event(
                "train", step, {"loss": loss, "lr": 1e-4 * (1 - step / 301), "epoch": step / 10}, t=t0 + step
            )
        )
        if step % 30 == 0:
            lines.append(
                encode_event(
                    "eval", step, {"eval_loss": loss + 0.1 + 0.002 * max(0, step - 150)}, t=t0 + step
                )
            )
    lines.append(
        encode_event(
            "sample",
            300,
            {"prompt": "56 ASIAN M <demo>", "output": "56 ASIAN M <demo> ASIAN m <demoing>"},
            t=t0 + 300,
        )
    )
    findings = [
        Finding(
            "tokenizer.structural",
            Severity.FAIL,
            "<demo> is cut into 4 pieces",
            evidence={"pieces": ["Ġ<", "dem", "o", ">"]},
            recipes=["register-structural-tokens"],
            rule="a structural token must be a single piece",
        ),
        Finding(
            "curves.memorization",
            Severity.WARN,
            "train loss 0.0004: memorising",
            evidence={"final_loss": 0.0004},
            recipes=["early-stopping"],
        ),
        Finding("data.labels", Severity.OK, "labels look fine"),
    ]
    for f in findings:
        lines.append(encode_event("finding", 300, f.to_dict(), t=t0 + 300))
    lines.append(
        encode_event(
            "alert",
            300,
            {
                "severity": "warn",
                "message": "validation loss rose 25% above its best",
                "probe": "curves.overfitting",
            },
            t=t0 + 300,
        )
    )
    lines.append(encode_event("status", 300, {"state": "finished"}, t=t0 + 300))
    (path / "events.jsonl").write_text("".join(lines))
    os.utime(path / "events.jsonl", (t0 + 300, t0 + 300))


@pytest.fixture(scope="module")
def runs_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tui_simulate import write_tokenizer_run

    base = tmp_path_factory.mktemp("snap")
    t0 = time.time() - 3 * 86400  # "3.0d ago" for as long as the test takes
    _write_run(base / "runs" / "bart-broken", t0)
    toks = write_tokenizer_run(base / "runs" / "toks", with_model=False)
    for file in toks.rglob("*"):
        os.utime(file, (t0 - 86400, t0 - 86400))
    return base


@pytest.fixture
def in_runs(runs_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(runs_cwd)
    return runs_cwd


async def _settle(pilot, cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "screen did not load"
        await pilot.pause(0.05)
    await pilot.pause(0.2)


def _app(path: str):  # type: ignore[no-untyped-def]
    from ehrdebug.tui.app import EhrDebugApp

    app = EhrDebugApp(path)
    return app


def test_snapshot_runs(in_runs: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = _app("runs")

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(
            pilot,
            lambda: (
                len(getattr(app.screen, "rows", {})) == 2
                and all(r.status != "…" for r in app.screen.rows.values())
            ),
        )

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_snapshot_live(in_runs: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = _app("runs/bart-broken")

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(
            pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None
        )

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_snapshot_findings(in_runs: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = _app("runs/bart-broken")

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(
            pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None
        )
        await pilot.press("f")
        await _settle(pilot, lambda: type(app.screen).__name__ == "FindingsScreen" and app.screen.findings)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_snapshot_tokens(in_runs: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = _app("runs/toks")

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(pilot, lambda: type(app.screen).__name__ == "LiveScreen")
        await pilot.press("t")
        await _settle(
            pilot,
            lambda: type(app.screen).__name__ == "TokensScreen" and app.screen.inspection is not None,
            60,
        )
        await pilot.press("p")  # training batch with max_length padding: pads carry loss

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_snapshot_help(in_runs: Path, snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = _app("runs/bart-broken")

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(
            pilot, lambda: type(app.screen).__name__ == "LiveScreen" and app.screen.state is not None
        )
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
