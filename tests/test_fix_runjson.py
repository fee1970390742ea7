"""A fixed config trains as is, and the new run's run.json records which fixes changed what."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_loop import TINY, write_standin  # noqa: E402


def test_fixes_reach_the_new_runs_run_json(tmp_path: Path) -> None:
    from ehrdebug.runstore import open_run
    from recipes.fixes import apply_fixes
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    data = write_standin(tmp_path / "data")
    source = REPO / "recipes/configs/bart_ehrgen_small_broken.yaml"
    before = source.read_bytes()
    result = apply_fixes(source, ["lower-temperature", "warmup-new-embeddings"], tmp_path / "fixed")
    assert source.read_bytes() == before  # the original is never touched
    assert result.config_path is not None
    fixed_cfg = result.config_path
    config = load_recipe_config(fixed_cfg, [*TINY, f"data.root={data}", f"out={tmp_path / 'run'}"])
    assert [f["id"] if isinstance(f, dict) else f for f in config["fixes"]] == ["lower-temperature", "warmup-new-embeddings"]
    run = open_run(run_training(config))
    recorded = run.info["fixes"]
    assert [f["id"] if isinstance(f, dict) else f for f in recorded] == ["lower-temperature", "warmup-new-embeddings"]
    assert json.dumps(recorded)  # JSON-safe, with what changed
