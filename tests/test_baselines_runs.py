"""Each baseline trains on tiny data in seconds and writes a valid ehrdebug run with its model artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.runstore import open_run
from recipes.baselines.registry import BASELINES, get_baseline, load_baseline_config, train_baseline
from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.fixture(scope="module")
def codes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_codes(tmp_path_factory.mktemp("codes"))


def _train(config_name: str, codes: Path, out: Path, *extra: str) -> tuple[Path, dict]:
    config = load_baseline_config(CONFIGS / config_name, [f"data.root={codes}", "bootstrap=50", *extra])
    run = train_baseline(config, out)
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    return run, summary


def _check_run(run: Path, summary: dict) -> None:
    opened = open_run(run)
    assert opened.status == "finished"
    assert opened.history().train.values, "no train loss events"
    assert any(e.get("eval_loss") is not None for e in opened.events(("eval",)))
    info = json.loads((run / "run.json").read_text())
    assert info["format_version"] == 1 and info["baseline"] is True
    assert (run / "artifacts" / "summary.md").read_text().count("## Test split") == 1
    assert (run / summary["best_checkpoint"]).is_dir()
    assert summary["parameters"]["total"] > 0


def _check_binary(run: Path, summary: dict) -> None:
    test = summary["test"]
    for key in ("test_auroc", "test_auprc", "test_f1"):
        assert 0.0 <= test[key] <= 1.0
        ci = summary["test_ci"][key]
        assert ci["low"] <= ci["high"]
    rows = [
        json.loads(line) for line in (run / "artifacts" / "test_predictions.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 40 and {"subject_id", "label", "probability"} <= set(rows[0])
    assert (run / "artifacts" / "roc_pr.png").stat().st_size > 1000


def test_registry_lists_every_baseline() -> None:
    assert set(BASELINES) == {"logreg", "xgboost", "lstm", "med2vec"}
    for name in BASELINES:
        assert get_baseline(name).NAME == name


def test_logreg_learns_and_the_prior_is_the_floor(codes: Path, tmp_path: Path) -> None:
    run, summary = _train("logreg_mortality_small.yaml", codes, tmp_path / "lr")
    _check_run(run, summary)
    _check_binary(run, summary)
    assert summary["test"]["test_auroc"] > 0.8  # R1 decides the label
    weights = json.loads((run / "checkpoints" / "step-1" / "model.json").read_text())
    assert weights["coef"]["R1"] == max(weights["coef"].values())
    prior_run, prior = _train("logreg_prior_mortality_small.yaml", codes, tmp_path / "prior")
    _check_binary(prior_run, prior)
    assert prior["test"]["test_auroc"] == pytest.approx(0.5)
    probs = {
        json.loads(line)["probability"]
        for line in (prior_run / "artifacts" / "test_predictions.jsonl").read_text().splitlines()
    }
    assert len(probs) == 1  # one probability for everyone: the training prevalence
    prevalence = (
        sum(json.loads(line)["mortality"] for line in (codes / "train.jsonl").read_text().splitlines()) / 80
    )
    assert probs.pop() == pytest.approx(prevalence, abs=1e-3)


def test_xgboost_early_stops_and_saves_its_json_model(codes: Path, tmp_path: Path) -> None:
    import xgboost as xgb

    run, summary = _train("xgboost_mortality_small.yaml", codes, tmp_path / "xgb", *FAST["xgboost"])
    _check_run(run, summary)
    _check_binary(run, summary)
    ckpt = run / summary["best_checkpoint"]
    booster = xgb.Booster()
    booster.load_model(str(ckpt / "model.json"))
    names = json.loads((ckpt / "features.json").read_text())["features"]
    assert names[-2:] == ["age_first_visit", "age_last_visit"] and "code:R1" in names
    assert summary["best_step"] <= summary["steps"] <= 30
    assert len(open_run(run).history().train.values) == summary["steps"]  # one loss point per boosting round


@pytest.mark.parametrize("config_name", ["lstm_mortality_small.yaml", "lstm_nextvisit_small.yaml"])
def test_lstm_trains_both_tasks_and_saves_safetensors(codes: Path, tmp_path: Path, config_name: str) -> None:
    from safetensors.torch import load_file

    run, summary = _train(config_name, codes, tmp_path / "lstm", *FAST["lstm"])
    _check_run(run, summary)
    ckpt = run / summary["best_checkpoint"]
    weights = load_file(str(ckpt / "model.safetensors"))
    assert "lstm.weight_ih_l0_reverse" in weights  # bidirectional
    assert json.loads((ckpt / "vocab.json").read_text())["tokens"][:3] == ["[PAD]", "[UNK]", "[VS]"]
    if summary["task"] == "mortality":
        _check_binary(run, summary)
    else:
        assert {"test_aps", "test_recall_at_10", "test_frequency_aps"} <= set(summary["test"])
    steps = [c for c in (run / "checkpoints").iterdir()]
    assert steps == [ckpt]  # only the best checkpoint is kept


@pytest.mark.parametrize("config_name", ["med2vec_mortality_small.yaml", "med2vec_nextvisit_small.yaml"])
def test_med2vec_pretrains_then_fits_a_head_and_saves_embeddings(
    codes: Path, tmp_path: Path, config_name: str
) -> None:
    from safetensors.torch import load_file

    run, summary = _train(config_name, codes, tmp_path / "m2v", *FAST["med2vec"])
    _check_run(run, summary)
    phases = {e.get("phase") for e in open_run(run).events(("train",))}
    assert phases == {"med2vec", "head"}
    emb = load_file(str(run / "artifacts" / "med2vec" / "code_embeddings.safetensors"))["code_embeddings"]
    vocab = json.loads((run / "artifacts" / "med2vec" / "vocab.json").read_text())["tokens"]
    assert emb.shape == (len(vocab), 8) and float(emb.min()) >= 0.0  # ReLU(W_c): non-negative
    if summary["task"] == "mortality":
        _check_binary(run, summary)


def test_med2vec_objectives_use_neighbouring_visits_and_within_visit_pairs() -> None:
    import torch

    from recipes.baselines.med2vec_model import visit_batch

    batch = visit_batch(
        [[([3, 4], 50.0), ([5], 51.0), ([3, 6], 52.0)], [([7], 40.0)]], 8, window=1, max_code_pairs=100
    )
    src, dst = batch["neighbours"]
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 1),
    ]  # single visit: none
    ci, cj = batch["code_pairs"]
    assert sorted(zip(ci.tolist(), cj.tolist(), strict=True)) == [(3, 4), (3, 6), (4, 3), (6, 3)]
    assert torch.equal(batch["last"], torch.tensor([2, 3]))


def test_train_command_dispatches_baseline_configs(
    codes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main

    out = tmp_path / "cli_lr"
    assert (
        main(
            [
                "train",
                str(CONFIGS / "logreg_mortality_small.yaml"),
                f"data.root={codes}",
                f"out={out}",
                "bootstrap=0",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    assert open_run(out).status == "finished"
    assert (
        main(["train", str(CONFIGS / "logreg_mortality_small.yaml"), f"data.root={codes}", f"out={out}"]) == 2
    )  # not overwritten
    assert main(["train", str(CONFIGS / "xgboost_mortality_small.yaml"), "model.depth=2"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "did you mean 'model.max_depth'" in err
