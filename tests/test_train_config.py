"""Recipe configs: every shipped YAML loads, overrides parse, user mistakes are one-line errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from recipes.train.config import load_recipe_config

ALL_YAML = sorted((Path(__file__).resolve().parents[1] / "recipes" / "configs").glob("*.yaml"))
# training configs name a recipe; other YAML there (benchmark suites read by `ehrdebug bench`) do not
CONFIGS = [p for p in ALL_YAML if any(line.startswith("recipe:") for line in p.read_text().splitlines())]
SMALL = Path(__file__).resolve().parents[1] / "recipes" / "configs" / "bart_ehrgen_small.yaml"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path: Path) -> None:
    from recipes.baselines.registry import BASELINES, baseline_name, load_baseline_config
    from recipes.train.task import task_names

    if baseline_name(path) is not None:  # logreg/xgboost/lstm/med2vec: their own registry and loader
        config = load_baseline_config(path)
        assert config["recipe"] in BASELINES
    else:
        config = load_recipe_config(path)
        assert config["recipe"] in task_names()
    assert config["size"] in ("small", "medium", "large")
    assert config["size"] in path.stem.split("_")[2:]


def test_issue_11_behrt_configs_are_shipped() -> None:
    names = {p.stem for p in ALL_YAML}
    assert {"behrt_mlm_small", "behrt_mlm_medium", "behrt_mlm_large", "behrt_nextvisit_small", "behrt_mortality_small",
            "behrt_mortality_lora_small"} <= names  # fmt: skip
    lora = load_recipe_config(SMALL.with_name("behrt_mortality_lora_small.yaml"))
    assert lora["use_lora"] is True and lora["recipe"] == "behrt_classify" and lora["init_from"]


def test_shipped_tiers_cover_both_recipes() -> None:
    names = {p.stem for p in CONFIGS}
    for recipe in ("bart_ehrgen", "t5_diagnosis"):
        for size in ("small", "medium", "large"):
            assert f"{recipe}_{size}" in names


def test_small_tiers_use_the_shipped_bases() -> None:
    assert load_recipe_config(SMALL)["base"] == "sample_data/bases/bart"
    assert load_recipe_config(SMALL.with_name("t5_diagnosis_small.yaml"))["base"] == "sample_data/bases/t5"


def test_overrides_parse_numbers_booleans_lists_and_nested_keys() -> None:
    config = load_recipe_config(SMALL, ["lr=1e-4", "epochs=3", "out=runs/x", "generation.temperature=1.3",
                                 "early_stopping.patience=null", "special_tokens=[<v>, <END>]", "resume=true"])  # fmt: skip
    assert config["lr"] == pytest.approx(1e-4) and isinstance(config["lr"], float)
    assert config["epochs"] == 3 and config["out"] == "runs/x"
    assert config["generation"]["temperature"] == pytest.approx(1.3)
    assert config["early_stopping"]["patience"] is None
    assert config["special_tokens"] == ["<v>", "<END>"]
    assert config["resume"] is True
    # untouched keys keep the file's values
    assert config["generation"]["block_pretrained_eos"] is True


def test_structural_tokens_keep_their_backslash() -> None:
    assert "<\\v>" in load_recipe_config(SMALL)["special_tokens"]


@pytest.mark.parametrize(
    ("override", "hint"),
    [("lrr=1e-4", "'lr'"), ("generation.temprature=1", "'generation.temperature'"), ("epoch=3", "'epochs'")],
)
def test_unknown_override_names_the_closest_key(override: str, hint: str) -> None:
    with pytest.raises(UserError) as err:
        load_recipe_config(SMALL, [override])
    message = str(err.value)
    assert "unknown config key" in message and hint in message and "\n" not in message


def test_unknown_key_in_the_yaml_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("recipe: bart_ehrgen\nwarmup: 10\n")
    with pytest.raises(UserError, match="warmup_steps"):
        load_recipe_config(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("recipe: [unclosed\n", "not valid YAML"), ("- a\n- b\n", "mapping"), ("recipe: gpt\n", "unknown recipe"),
     ("new_token_init: zeros\n", "new_token_init"), ("label_pad: 0\n", "label_pad"), ("epochs: 0\n", "epochs")],
)  # fmt: skip
def test_bad_files_are_one_line_user_errors(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as err:
        load_recipe_config(path)
    assert "\n" not in str(err.value)


def test_missing_config_and_malformed_override(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_recipe_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="key=value"):
        load_recipe_config(SMALL, ["lr"])


def test_cli_maps_user_errors_to_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.cli.app import main

    assert main(["train", str(SMALL), "lrr=1e-4"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'lr'" in err and err.count("\n") == 1


def test_cli_dry_run_prints_the_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from ehrdebug.cli.app import main

    assert main(["train", str(SMALL), "lr=1e-4", "generation.top_k=7", "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["lr"] == pytest.approx(1e-4) and resolved["generation"]["top_k"] == 7


def test_cli_missing_base_dir_is_exit_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.cli.app import main

    out = tmp_path / "run"
    assert main(["train", str(SMALL), f"base={tmp_path / 'no_such_base'}", f"out={out}"]) == 2
    assert "base model directory not found" in capsys.readouterr().err
    assert not out.exists()
