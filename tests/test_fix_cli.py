"""``ehrdebug fix``: --list, --recipe on a config, --dry-run, --auto from the doctor's findings, user errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml


def _helpers():
    spec = importlib.util.spec_from_file_location("fix_recipes_helpers", Path(__file__).parent / "test_fix_recipes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_list_shows_fixes_and_advice(capsys):
    from ehrdebug.cli.app import main

    assert main(["fix", "--list"]) == 0
    out = capsys.readouterr().out
    assert "register-structural-tokens" in out and "answers: tokenizer.structural" in out
    assert "split-by-patient" in out  # advice is listed, with its text


def test_recipe_on_config_writes_a_new_config(tmp_path, capsys):
    from ehrdebug.cli.app import main

    cfg = tmp_path / "broken.yaml"
    cfg.write_text(yaml.safe_dump({"recipe": "bart_ehrgen", "epochs": 30, "generation": {"temperature": 1.3},
                                   "early_stopping": {"patience": None}}))
    before = cfg.read_bytes()
    assert main(["fix", str(cfg), "--recipe", "lower-temperature", "-r", "early-stopping", "--dry-run"]) == 0
    assert not (tmp_path / "broken-fixed").exists()
    assert "1.3 -> 1.0" in capsys.readouterr().out
    assert main(["fix", str(cfg), "-r", "lower-temperature", "-r", "early-stopping"]) == 0
    out = capsys.readouterr().out
    fixed = tmp_path / "broken-fixed" / "config.yaml"
    assert f"ehrdebug train {fixed}" in out
    data = yaml.safe_load(fixed.read_text())
    assert data["generation"]["temperature"] == 1.0 and data["early_stopping"]["patience"] == 2
    assert cfg.read_bytes() == before
    from recipes.train import load_recipe_config

    assert load_recipe_config(str(fixed))["early_stopping"]["patience"] == 2  # trainable as is
    assert main(["fix", str(cfg), "-r", "lower-temperature"]) == 0  # a second run picks a new directory
    assert (tmp_path / "broken-fixed-2" / "config.yaml").is_file()


def test_user_errors_exit_2(tmp_path, capsys):
    from ehrdebug.cli.app import main

    assert main(["fix"]) == 2
    assert main(["fix", str(tmp_path / "missing.yaml"), "-r", "early-stopping"]) == 2
    cfg = tmp_path / "c.yaml"
    cfg.write_text("recipe: bart_ehrgen\n")
    assert main(["fix", str(cfg)]) == 2
    assert main(["fix", str(cfg), "-r", "no-such-fix"]) == 2
    err = capsys.readouterr().err
    assert err.count("ehrdebug: error:") == 4 and "Traceback" not in err


def test_auto_applies_what_the_doctor_names(tmp_path, capsys):
    """A checkpoint whose tokenizer fragments <demo>: the doctor's tokenizer finding drives the fix."""
    from ehrdebug.cli.app import main
    from recipes.fixes.surgery import load_tokenizer

    helpers = _helpers()
    ckpt = helpers._tiny_bart(tmp_path / "ckpt")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in helpers.TEXTS[:3] * 5))
    (tmp_path / "ehrdebug.toml").write_text('[ehrdebug]\nstructural_tokens = ["<demo>", "<v>", "<\\\\v>", "<END>"]\n')
    code = main(["fix", str(ckpt), "--auto", "--data", str(data), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "register-structural-tokens" in out
    record = json.loads((tmp_path / "out" / "fixes.json").read_text())
    assert "register-structural-tokens" in [f["id"] for f in record["fixes"]]
    tok = load_tokenizer(tmp_path / "out" / "checkpoint")
    assert len(tok.encode("<demo>", add_special_tokens=False)) == 1


def test_alternatives_are_not_stacked():
    from recipes.fixes.apply import drop_alternatives

    ids = ["init-new-embeddings-mean", "add-code-tokens", "init-new-embeddings-description", "warmup-new-embeddings"]
    assert drop_alternatives(ids) == ["init-new-embeddings-mean", "add-code-tokens", "warmup-new-embeddings"]


@pytest.mark.parametrize("recipe_id", ["early-stopping", "mask-label-padding"])
def test_preview_does_not_write(tmp_path, recipe_id):
    from recipes.fixes import get

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"recipe": "t5_diagnosis", "label_pad": "pad", "early_stopping": {"patience": None}}))
    lines = get(recipe_id).preview(cfg)
    assert lines and all(isinstance(line, str) for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
