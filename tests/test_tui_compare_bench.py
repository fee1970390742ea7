"""The TUI's Compare screen shows ``ehrdebug compare``'s benchmark table for the marked runs (pilot test).

Two real tiny baseline runs (the class prior and XGBoost) on the same split: the screen's table must hold
the very cells the CLI prints (model, parameters, train seconds, AUROC/AUPRC/F1 with intervals, p-value),
beside the curves and the config differences it already showed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recipes.baselines.registry import load_baseline_config, train_baseline

    codes = write_codes(tmp_path_factory.mktemp("codes"))
    base = tmp_path_factory.mktemp("runs")
    for name, cfg in (
        ("prior", "logreg_prior_mortality_small.yaml"),
        ("xgboost", "xgboost_mortality_small.yaml"),
    ):
        config = load_baseline_config(
            CONFIGS / cfg, [f"data.root={codes}", "bootstrap=0", *FAST.get(name, [])]
        )
        train_baseline(config, base / name)
    return base


async def _wait(pilot, cond, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    import time

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def _cells(table) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_compare_screen_shows_the_cli_benchmark_table(root: Path) -> None:
    from textual.widgets import DataTable

    from ehrdebug.tui.app import EhrDebugApp
    from recipes.bench.compare import compare_runs
    from recipes.bench.report import HEAD, table_cells

    app = EhrDebugApp(root)
    async with app.run_test(size=(160, 40)) as pilot:
        await _wait(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        runs = app.screen.query_one(DataTable)
        await _wait(pilot, lambda: runs.row_count == 2)
        for i in range(2):  # mark both runs, then c
            runs.move_cursor(row=i)
            await pilot.press("space")
        await pilot.press("c")
        await _wait(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        screen = app.screen
        await _wait(pilot, lambda: screen.bench is not None)
        table = screen.query_one("#cmp-bench", DataTable)
        assert table.display and [str(c.label) for c in table.columns.values()] == list(HEAD)
        shown = _cells(table)
        # the same cells as `ehrdebug compare` (same bootstrap resamples and seed)
        paths = [Path(r.path) for r in screen.runs]
        assert shown == table_cells(compare_runs(paths).rows)
        by_model = {row[0]: dict(zip(HEAD, row, strict=True)) for row in shown}
        assert set(by_model) == {"prior (baseline)", "xgboost (baseline)"}
        xgb, prior = by_model["xgboost (baseline)"], by_model["prior (baseline)"]
        assert xgb["p vs best baseline"] == "reference"  # the better baseline is the reference ...
        assert 0 <= float(prior["p vs best baseline"].lstrip("<")) <= 1  # ... the prior is tested against it
        assert xgb["AUROC [95% CI]"].count("[") == 1 and float(xgb["AUROC [95% CI]"].split()[0]) > 0.8
        assert prior["params"] == "1" and float(xgb["train s"]) >= 0
        # still beside the config differences and the overlaid curves
        config_keys = [row[0] for row in _cells(screen.query_one("#cmp-config", DataTable))]
        assert "recipe" in config_keys and len(screen.query_one("#cmp-plot").curves) == 2
        await pilot.press("escape")
