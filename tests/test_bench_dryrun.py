"""``ehrdebug bench CONFIG --dry-run``: every model's config checked and its model built (no weights), nothing trained.

The shipped small/medium/large benchmarks must all pass it (the medium and large tiers are meant for a pod,
so this is where they are checked); a broken model config is reported on its row and makes the command exit 2;
the parameter counts it reports are those the trained runs then record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"
BEHRT_TINY = ["max_steps=2", "eval_every=2", "batch_size=16", "model.hidden_size=16", "model.num_hidden_layers=1",
              "model.num_attention_heads=2", "model.intermediate_size=32", "max_minutes=null", "baselines=false"]  # fmt: skip


def test_every_shipped_benchmark_passes_the_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main
    from recipes.bench.dryrun import dry_run_bench

    out = tmp_path / "small"
    assert main(["bench", str(CONFIGS / "bench_mortality_small.yaml"), f"out={out}", "--dry-run"]) == 0
    printed = capsys.readouterr()
    assert (
        "nothing trained or written" in printed.err
        and "| behrt_small_lora | loop | behrt_classify |" in printed.out
    )
    totals: dict[str, dict[str, int]] = {}
    for tier in ("small", "medium", "large"):
        out = tmp_path / tier
        _, rows = dry_run_bench(CONFIGS / f"bench_mortality_{tier}.yaml", [f"out={out}"])
        assert not out.exists()  # nothing written, not even the folder
        assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
        for row in rows:
            if row["recipe"] != "xgboost":  # trees are counted after training; the note says so
                assert row["parameters"] > 0 and 0 < row["trainable_parameters"] <= row["parameters"]
        totals[tier] = {
            r["model"].split("_")[0]: r["parameters"] for r in rows if r.get("parameters") and r["scored"]
        }
        lora = next(r for r in rows if r["model"].endswith("_lora"))
        assert lora["trainable_parameters"] < lora["parameters"] / 2
    for family in ("behrt", "cehrbert", "ehrmamba", "lstm"):  # the tiers really scale the models
        assert totals["small"][family] < totals["medium"][family] < totals["large"][family], family


def _write(tmp_path: Path, models: list[dict], codes: Path) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(
        json.dumps({"name": "tiny", "data": {"root": str(codes)}, "bootstrap": 0, "models": models})
    )
    return path


def test_the_dry_run_reports_each_broken_model_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main
    from recipes.bench.dryrun import dry_run_bench

    codes = write_codes(tmp_path / "codes")
    models = [
        {
            "name": "xgboost_typo",
            "config": str(CONFIGS / "xgboost_mortality_small.yaml"),
            "overrides": ["model.depth=2"],
        },
        {"name": "behrt_bad", "config": str(CONFIGS / "behrt_mortality_small.yaml"), "overrides": ["lr=-1"]},
        {
            "name": "lora_orphan",
            "config": str(CONFIGS / "behrt_mortality_lora_small.yaml"),
            "init_from": "behrt_mlm",
        },
        {
            "name": "lstm_nan",
            "config": str(CONFIGS / "lstm_mortality_small.yaml"),
            "overrides": ["train.lr=.nan"],
        },
        {"name": "maybe", "config": str(tmp_path / "not_there.yaml"), "optional": True},
        {"name": "logreg", "config": str(CONFIGS / "logreg_mortality_small.yaml")},
    ]
    path = _write(tmp_path, models, codes)
    _, rows = dry_run_bench(path)
    by = {r["model"]: r for r in rows}
    assert by["xgboost_typo"]["status"] == "invalid" and "model.depth" in by["xgboost_typo"]["error"]
    assert by["behrt_bad"]["status"] == "invalid" and "lr" in by["behrt_bad"]["error"]
    assert by["lora_orphan"]["status"] == "invalid" and "not listed before it" in by["lora_orphan"]["error"]
    assert (
        by["lstm_nan"]["status"] == "invalid"
        and "train.lr: must be a finite number" in by["lstm_nan"]["error"]
    )
    assert by["maybe"]["status"] == "skipped" and by["logreg"]["status"] == "ok"
    assert main(["bench", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out.count("| invalid |") == 4
    assert len(captured.err.strip().splitlines()) == 1 and "4 of 6 models would fail" in captured.err


@pytest.mark.slow  # trains six tiny models through the benchmark
def test_dry_run_counts_are_what_training_records(tmp_path: Path) -> None:
    from recipes.bench.bench import run_bench
    from recipes.bench.dryrun import dry_run_bench

    codes = write_codes(tmp_path / "codes")
    models = [
        {"name": "prior", "config": str(CONFIGS / "logreg_prior_mortality_small.yaml"), "baseline": True},
        {"name": "logreg", "config": str(CONFIGS / "logreg_mortality_small.yaml"), "baseline": True},
        {"name": "lstm", "config": str(CONFIGS / "lstm_mortality_small.yaml"), "overrides": FAST["lstm"]},
        {"name": "med2vec", "config": str(CONFIGS / "med2vec_mortality_small.yaml"), "overrides": FAST["med2vec"]},
        {"name": "behrt", "config": str(CONFIGS / "behrt_mortality_small.yaml"), "overrides": ["init_from=null", *BEHRT_TINY]},
        {"name": "behrt_lora", "config": str(CONFIGS / "behrt_mortality_lora_small.yaml"), "overrides": ["init_from=null", *BEHRT_TINY]},
    ]  # fmt: skip
    path = _write(tmp_path, models, codes)
    _, planned = dry_run_bench(path)
    out = run_bench(path, [f"out={tmp_path / 'bench'}"], progress=False)
    trained = {r["model"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    for row in planned:
        got = trained[row["model"]]
        assert got["status"] == "finished", got
        assert (row["parameters"], row["trainable_parameters"]) == (
            got["parameters"],
            got["trainable_parameters"],
        )
