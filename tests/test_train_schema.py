"""One declared schema (issue 15): every bad value is a one-line UserError before anything runs, and the
schema is the shared loop keys plus each task's own keys (a key of another task is named as such)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from recipes.train.config import load_recipe_config

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"
BART = CONFIGS / "bart_ehrgen_small.yaml"
BEHRT = CONFIGS / "behrt_mlm_small.yaml"

BAD = [
    (BART, "lr=nan", "lr: must be a finite number"),
    (BART, "lr=inf", "lr: must be a finite number"),
    (BART, "lr=-1", "lr: should be greater than 0"),
    (BART, "max_steps=-5", "max_steps"),
    (BART, "max_steps=abc", "max_steps"),
    (BART, "warmup_steps=-10", "warmup_steps"),
    (BART, "warmup_steps=abc", "warmup_steps"),
    (BART, "log_every=0", "log_every"),
    (BART, "keep_checkpoints=-1", "keep_checkpoints"),
    (BART, "max_length=0", "max_length"),
    (BART, "threads=-1", "threads"),
    (BART, "seed=abc", "seed"),
    (BART, "special_tokens=5", "special_tokens"),
    (BART, "early_stopping.patience=abc", "early_stopping.patience"),
    (BART, "max_minutes=abc", "max_minutes"),
    (BART, "generation.temperature=-1", "generation.temperature"),
    (BART, "generation.top_k=abc", "generation.top_k"),
    (BART, "generation.top_p=1.5", "generation.top_p"),
    (BART, "scheduler=cosine_restarts", "scheduler: must be one of"),
    (BART, "lora.dropout=1", "lora.dropout"),
    (BEHRT, "mlm.probability=2", "mlm.probability"),
    (BEHRT, "tokenizer.min_frequency=0", "tokenizer.min_frequency"),
    (BEHRT, "size=huge", "size: must be one of"),
]


@pytest.mark.parametrize(("path", "override", "match"), BAD, ids=[b[1] for b in BAD])
def test_bad_values_are_one_line_user_errors(path: Path, override: str, match: str) -> None:
    with pytest.raises(UserError, match=match.replace(".", r"\.")) as err:
        load_recipe_config(path, [override])
    assert "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(("path", "override", "hints"), [
    (BART, "mlm.probability=0.2", ["(a key of ", "behrt_mlm", "only)"]),
    (BEHRT, "generation.temperature=1", ["(a key of ", "bart_ehrgen, t5_diagnosis", "only)"]),
    (BEHRT, "mlm.probabilty=0.2", ["did you mean 'mlm.probability'"]),
    (BEHRT, "tokenizer.min_freq=2", ["did you mean 'tokenizer.min_frequency'"]),
])  # fmt: skip
def test_unknown_keys_name_the_closest_or_the_owning_task(path: Path, override: str, hints: list[str]) -> None:
    with pytest.raises(UserError, match="unknown config key") as err:
        load_recipe_config(path, [override])
    assert all(h in str(err.value) for h in hints), str(err.value)


def test_device_cuda_without_cuda_is_refused() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UserError, match="CUDA is not available"):
        load_recipe_config(BART, ["device=cuda"])


def test_values_come_back_in_their_declared_types() -> None:
    config = load_recipe_config(BEHRT, ["lr=1e-3", "max_steps=7", "mlm.probability=0.2", "data.max_train=null"])
    assert isinstance(config["lr"], float) and config["max_steps"] == 7 and config["mlm"]["probability"] == 0.2
    assert config["data"]["codes_dir"] == "sample_data/ehr/codes" and config["data"]["max_train"] is None


def test_a_yaml_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"recipe: bart_ehrgen\nout: \xff\xfe runs\n")
    with pytest.raises(UserError, match="not UTF-8") as err:
        load_recipe_config(path)
    assert "\n" not in str(err.value)


def test_cli_bad_value_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from ehrdebug.cli.app import main

    out = tmp_path / "run"
    assert main(["train", str(BEHRT), "lr=nan", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert "lr: must be a finite number" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_keys_docs_come_from_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.cli.app import main

    assert main(["train", str(BEHRT), "--keys"]) == 0
    text = capsys.readouterr().out
    assert "mlm.probability" in text and "lr" in text and "generation.temperature" not in text
