"""Baseline configs are validated by the training layer's one schema (``recipes.train.schema``), before anything trains.

Each baseline declares its keys as ``schema.Key`` (type with constraints, default, doc) as a training task
does; a value out of range, a NaN, a choice that does not exist or a typo is a one-line error naming the key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrdebug.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def test_every_baseline_declares_its_keys_in_the_schema() -> None:
    from recipes.baselines.config import SHARED
    from recipes.baselines.registry import BASELINES, get_baseline
    from recipes.train.schema import Key

    for name in BASELINES:
        baseline = get_baseline(name)
        keys = {**SHARED, **baseline.KEYS}
        assert all(isinstance(k, Key) and k.doc for k in keys.values()), name
        assert set(baseline.DEFAULTS) <= set(SHARED), name  # its defaults are of shared keys only


@pytest.mark.parametrize(
    ("config", "override", "said"),
    [
        ("lstm_mortality_small", "train.lr=-1", "train.lr: should be greater than 0"),
        ("lstm_mortality_small", "train.lr=.nan", "train.lr: must be a finite number (got nan)"),
        ("lstm_mortality_small", "model.dropout=1.5", "model.dropout: should be less than 1"),
        (
            "xgboost_mortality_small",
            "model.max_depth=0",
            "model.max_depth: should be greater than or equal to 1",
        ),
        (
            "xgboost_mortality_small",
            "model.subsample=2",
            "model.subsample: should be less than or equal to 1",
        ),
        ("logreg_mortality_small", "features=counts", "features: must be one of 'bag_of_codes' or 'none'"),
        (
            "med2vec_mortality_small",
            "pretrain.epochs=0",
            "pretrain.epochs: should be greater than or equal to 1",
        ),
        ("med2vec_nextvisit_small", "size=huge", "size: must be one of"),
        (
            "logreg_prior_mortality_small",
            "data.max_train=0",
            "data.max_train: should be greater than or equal to 1",
        ),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(config: str, override: str, said: str) -> None:
    from recipes.baselines.registry import load_baseline_config

    with pytest.raises(UserError) as raised:
        load_baseline_config(CONFIGS / f"{config}.yaml", [override])
    message = str(raised.value)
    assert said in message and "\n" not in message, message


def test_values_come_back_in_their_declared_types() -> None:
    from recipes.baselines.registry import load_baseline_config

    config = load_baseline_config(
        CONFIGS / "lstm_mortality_small.yaml",
        ["threads=2", "train.max_minutes=null", "train.lr=1e-3", "seed=3"],
    )
    assert config["threads"] == 2 and config["train"]["max_minutes"] is None and config["seed"] == 3
    assert (
        isinstance(config["train"]["lr"], float) and config["model"]["num_layers"] == 1
    )  # the declared default


def test_the_cli_refuses_a_bad_baseline_value_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ehrdebug.cli.app import main

    out = tmp_path / "never"
    assert (
        main(["train", str(CONFIGS / "xgboost_mortality_small.yaml"), "model.learning_rate=0", f"out={out}"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.learning_rate" in err and not out.exists()
