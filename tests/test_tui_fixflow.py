"""Fix and retrain from the TUI: findings → preview → apply to a copy → retrain (a real, tiny BART
training in a separate process) → follow it live → compare before and after."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from ehrdebug.findings import Finding, Severity
from ehrdebug.tui.app import EhrDebugApp

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "max_steps=4",
    "eval_every=2",
    "num_eval_generations=2",
    "num_test_generations=2",
    "generation.max_new_tokens=8",
    "max_minutes=3",
]


def _before_run(root: Path) -> Path:
    """A run whose run.json holds the broken seed-000 config and whose findings name two fixes."""
    from ehrdebug.runstore import RunLogger
    from recipes.train import load_recipe_config

    config = load_recipe_config(
        str(REPO / "recipes/configs/bart_ehrgen_small_broken.yaml"), [*SMALL, f"out={root / 'before'}"]
    )
    config["base"] = str(REPO / "sample_data/bases/bart")
    path = root / "before"
    with RunLogger(path, config, architecture="BartForConditionalGeneration") as log:
        for step in (1, 2, 3, 4):
            log.log_train(step, loss=2.0 / step, lr=1e-3, epoch=step / 4)
        log.log_eval(4, {"eval_loss": 3.2})
        log.log_findings(
            4,
            [
                Finding(
                    "tokenizer.structural",
                    Severity.FAIL,
                    "<demo> is cut into 4 pieces",
                    recipes=["register-structural-tokens"],
                ),
                Finding(
                    "curves.memorization",
                    Severity.WARN,
                    "loss 0.0004: memorising",
                    recipes=["early-stopping", "add-validation-set"],
                ),
            ],
        )
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
    ).hexdigest()


async def _wait(pilot, cond, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.1)


def test_plan_puts_findings_fixes_first() -> None:
    from ehrdebug.tui.screens.fix import plan_fixes

    rows, advice = plan_fixes(
        [
            Finding("a", Severity.WARN, "w", recipes=["early-stopping", "add-validation-set"]),
            Finding("b", Severity.OK, "fine", recipes=["lower-temperature"]),
        ]
    )
    assert rows[0] == ("early-stopping", "w", True)
    assert ("lower-temperature", rows[[r[0] for r in rows].index("lower-temperature")][1], False) in rows
    assert advice == ["add-validation-set"]


@pytest.mark.slow
async def test_fix_apply_retrain_follow_compare(tmp_path: Path) -> None:
    before = _before_run(tmp_path)
    digest = _digest(before)
    app = EhrDebugApp(tmp_path, follow_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await _wait(pilot, lambda: len(getattr(app.screen, "rows", {})) == 1, 30)
        await pilot.press("x")
        await _wait(pilot, lambda: type(app.screen).__name__ == "FixScreen", 10)
        fix = app.screen
        await _wait(pilot, lambda: fix.query_one("#fix-list").option_count > 0, 30)
        assert fix.selected() == ["register-structural-tokens", "early-stopping"]
        await _wait(pilot, lambda: "<demo>" in str(fix.query_one("#fix-preview-text").content), 60)
        await pilot.press("a")
        await _wait(pilot, lambda: fix.result is not None, 60)
        fixed = fix.result.config_path.read_text()
        assert "<demo>" in fixed and "register-structural-tokens" in fixed
        assert _digest(before) == digest  # the original run is untouched
        await pilot.press("r")
        await _wait(pilot, lambda: type(app.screen).__name__ == "LiveScreen", 300)
        live = app.screen
        await _wait(
            pilot, lambda: live.state is not None and live.state.state in ("finished", "crashed"), 900
        )
        assert live.state.state == "finished", (fix.result.out_dir / "train.log").read_text()[-2000:]
        assert live.state.history.evals["eval_loss"].steps[-1] == 4 and live.state.history.train.values
        await pilot.press("escape")
        await _wait(pilot, lambda: type(app.screen).__name__ == "FixScreen", 10)
        await pilot.press("c")
        await _wait(
            pilot, lambda: type(app.screen).__name__ == "CompareScreen" and len(app.screen.histories) == 2, 60
        )
        cmp = app.screen
        config_keys = [
            cmp.query_one("#cmp-config").get_row_at(i)[0]
            for i in range(cmp.query_one("#cmp-config").row_count)
        ]
        assert "special_tokens" in config_keys and "early_stopping.patience" in config_keys
        assert fix.proc is not None and fix.proc.wait(300) == 0
