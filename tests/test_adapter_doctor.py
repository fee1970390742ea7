"""PEFT adapters in the doctor: the base from adapter_config.json (a local dir, or a hub id found offline in
the HF cache), ``--base``, and the frozen new-token rows the trainable probe finds from the adapter's evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from tests.adapter_fixtures import BASE, COMMIT, REPO_ID, fake_hub_cache, make_adapter


@pytest.fixture()
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    fake_hub_cache(cache)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _trainable(report):
    return [f for f in report.findings if f.probe == "model.trainable"]


def test_resolve_base_local_cached_and_missing(tmp_path: Path, offline_cache: Path) -> None:
    from ehrdebug.adapters import resolve_base

    make_adapter(tmp_path / "local", steps=0)
    assert resolve_base(tmp_path / "local") == BASE
    make_adapter(tmp_path / "hub", base_name=REPO_ID, steps=0)
    found = resolve_base(tmp_path / "hub")
    assert found.name == COMMIT and (found / "model.safetensors").is_file()
    make_adapter(tmp_path / "gone", base_name="other-org/not-cached", steps=0)
    with pytest.raises(
        UserError, match=r"'other-org/not-cached'.*not in the local Hugging Face cache.*--base DIR_OR_HUB_ID"
    ):
        resolve_base(tmp_path / "gone")
    assert resolve_base(tmp_path / "gone", base=str(BASE)) == BASE  # --base overrides what the adapter names
    assert resolve_base(tmp_path / "gone", base=REPO_ID).name == COMMIT


def test_doctor_finds_frozen_new_rows_base_local(tmp_path: Path) -> None:
    from probes.doctor import diagnose

    made = make_adapter(tmp_path / "adapter", train_new_tokens="frozen")
    found = _trainable(diagnose(tmp_path / "adapter"))
    assert found and found[0].severity.name == "FAIL", [f.title for f in found]
    assert found[0].evidence["frozen_ids"] == made["ids"]
    assert found[0].evidence["unmoved_ids"] == made["ids"]  # still the mean of the base rows
    assert [e["piece"] for e in found[0].examples] == ["<code>", "</code>"]
    assert "lora-train-embeddings" in found[0].recipes


def test_doctor_on_cached_hub_base_offline(
    tmp_path: Path, offline_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main

    make_adapter(tmp_path / "adapter", base_name=REPO_ID, train_new_tokens="frozen")
    code = main(["doctor", str(tmp_path / "adapter"), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1, out  # a fail finding
    assert "added tokens have frozen embedding rows" in out and "'<code>'" in out


def test_doctor_says_what_to_pass_when_base_is_missing(tmp_path: Path, offline_cache: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from ehrdebug.cli.app import main

    make_adapter(tmp_path / "adapter", base_name="other-org/not-cached", steps=0)
    assert main(["doctor", str(tmp_path / "adapter")]) == 2
    assert "--base DIR_OR_HUB_ID" in capsys.readouterr().err
    assert main(["doctor", str(tmp_path / "adapter"), "--base", REPO_ID, "--format", "json"]) == 1
    assert "frozen embedding rows" in capsys.readouterr().out
    assert main(["doctor", str(BASE), "--base", REPO_ID]) == 2  # --base only means something for an adapter
    assert "--base applies to a PEFT adapter" in capsys.readouterr().err


def test_trained_new_rows_are_not_flagged(tmp_path: Path) -> None:
    from probes.doctor import diagnose

    make_adapter(tmp_path / "tokens", train_new_tokens="trainable_tokens", steps=3)
    found = _trainable(diagnose(tmp_path / "tokens"))
    assert found[0].severity.name == "OK", found[0].title
    assert (
        found[0].evidence["trained_by"] == ["trainable_token_indices"]
        and found[0].evidence["unmoved_ids"] == []
    )


def test_trainable_but_unmoved_rows_warn(tmp_path: Path) -> None:
    """Trainable token rows that no step moved (a zero delta) are still at the mean initialisation."""
    from probes.doctor import diagnose

    make_adapter(tmp_path / "idle", train_new_tokens="trainable_tokens", steps=0)
    found = _trainable(diagnose(tmp_path / "idle"))
    assert found[0].severity.name == "WARN" and found[0].evidence["frozen_ids"] == []
    assert len(found[0].evidence["unmoved_ids"]) == 2
