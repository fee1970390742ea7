"""Shipped data (``sample_data/...``) is found from the install whatever the current folder; a user's own
relative paths stay relative to the current folder (issue 10: ``base model directory not found``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ehrdebug.data.sample import ENV, project_root, resolve_data_path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "recipes" / "configs" / "bart_ehrgen_small.yaml"


def test_shipped_paths_resolve_under_the_install_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV, raising=False)
    assert project_root() == ROOT
    for name in ("sample_data/bases/bart", "./sample_data/ehr/seq2seq/codes.txt", "sample_data/ehr"):
        got = resolve_data_path(name)
        assert got.is_absolute() and got.exists() and got == ROOT / Path(name)
    missing = resolve_data_path("sample_data/bases/nope")  # not shipped either: left as written, the caller says so
    assert missing == Path("sample_data/bases/nope") and not missing.is_absolute()


def test_user_relative_paths_stay_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("data/train.jsonl") == Path("data/train.jsonl")
    assert resolve_data_path("facebook/bart-base") == Path("facebook/bart-base")  # a hub id is not a path
    own = tmp_path / "sample_data" / "bases" / "bart"
    own.mkdir(parents=True)  # the user's own sample_data/ folder wins over the shipped one
    assert resolve_data_path("sample_data/bases/bart") == Path("sample_data/bases/bart")
    assert resolve_data_path(str(ROOT / "README.md")) == ROOT / "README.md"


def test_sample_data_override_is_followed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV, str(tmp_path / "mine"))
    assert resolve_data_path("sample_data/ehr/seq2seq") == tmp_path / "mine" / "seq2seq"


def test_recipe_config_resolves_base_and_data_paths(tmp_path, monkeypatch):
    from recipes.train.config import load_recipe_config

    monkeypatch.chdir(tmp_path)
    config = load_recipe_config(str(CONFIG), ["data.codes=sample_data/ehr/seq2seq/codes.txt", "data.root=my_data"])
    assert config["base"] == str(ROOT / "sample_data" / "bases" / "bart")
    assert config["data"]["codes"] == str(ROOT / "sample_data" / "ehr" / "seq2seq" / "codes.txt")
    assert config["data"]["root"] == "my_data"  # the user's own relative path is untouched


@pytest.mark.slow
def test_train_from_another_folder(tmp_path):
    """``ehrdebug train`` with the shipped config, run from a folder that is not the checkout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop(ENV, None)
    cmd = [sys.executable, "-m", "ehrdebug", "train", str(CONFIG), "max_steps=1", "out=run", "threads=1",
           "data.max_train=16", "batch_size=4", "eval_every=1", "num_eval_generations=1", "num_log_samples=1",
           "add_code_tokens=0", "warmup_steps=0", "early_stopping.patience=null"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "base model directory not found" not in done.stderr
    assert (tmp_path / "run" / "run.json").is_file() and (tmp_path / "run" / "events.jsonl").is_file()


def test_code_model_configs_resolve_their_shipped_codes_dir(tmp_path, monkeypatch):
    from recipes.train.config import load_recipe_config

    monkeypatch.chdir(tmp_path)
    configs = sorted((ROOT / "recipes" / "configs").glob("*.yaml"))
    with_codes = [p for p in configs if "codes_dir: sample_data/ehr/codes" in p.read_text(encoding="utf-8")]
    if not with_codes:
        pytest.skip("no config names sample_data/ehr/codes")
    config = load_recipe_config(str(with_codes[0]))
    assert config["data"]["codes_dir"] == str(ROOT / "sample_data" / "ehr" / "codes")
