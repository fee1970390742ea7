"""A checkpoint the doctor cannot load, and a config that is not text, are input errors (exit 2, one line).

Issue 15: the CI gate passed (exit 0, a warning that the model probes crashed) on truncated, empty or
junk safetensors and on an unknown ``model_type``; ``train`` on a non-UTF-8 YAML was an internal error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from ehrdebug.cli.app import main

BART = Path(__file__).resolve().parents[1] / "sample_data" / "bases" / "bart"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _checkpoint(tmp_path: Path, kind: str) -> Path:
    ck = tmp_path / "ck"
    shutil.copytree(BART, ck)
    weights = ck / "model.safetensors"
    if kind == "junk":
        weights.write_bytes(b"not a safetensors file at all")
    elif kind == "empty":
        weights.write_bytes(b"")
    elif kind == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    elif kind == "unknown_model_type":
        config = json.loads((ck / "config.json").read_text())
        config["model_type"] = "no-such-architecture"
        (ck / "config.json").write_text(json.dumps(config))
    return ck


@pytest.mark.parametrize("kind", ["junk", "empty", "truncated", "unknown_model_type"])
def test_doctor_refuses_a_checkpoint_it_cannot_load(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck = _checkpoint(tmp_path, kind)
    before = _hashes(ck)
    assert main(["doctor", str(ck), "--output", str(tmp_path / "report.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert "cannot load" in err[0] or "model_type" in err[0], err
    assert _hashes(ck) == before


def test_train_on_a_config_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"lr: \xff\xfe\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not UTF-8" in err[0], err
    assert bad.read_bytes() == b"lr: \xff\xfe\n"
