"""``ehrdebug pack``: one small archive with the best checkpoint only, no optimizer state, adapter-only for LoRA."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.baseline_fixtures import FAST, write_codes

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


@pytest.fixture(scope="module")
def codes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_codes(tmp_path_factory.mktemp("codes"))


@pytest.fixture(scope="module")
def lstm_run(codes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recipes.baselines.registry import load_baseline_config, train_baseline

    config = load_baseline_config(
        CONFIGS / "lstm_mortality_small.yaml", [f"data.root={codes}", "bootstrap=0", *FAST["lstm"]]
    )
    return train_baseline(config, tmp_path_factory.mktemp("runs") / "lstm")


@pytest.fixture(scope="module")
def lora_run(codes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny BEHRT LoRA run of the training loop, keeping every checkpoint (several step-N)."""
    from recipes.train import load_recipe_config, run_training

    config = load_recipe_config(CONFIGS / "behrt_mortality_lora_small.yaml", [
        f"data.codes_dir={codes}", "init_from=null", "max_steps=6", "eval_every=2", "keep_checkpoints=0", "batch_size=16",
        "model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=32",
        "baselines=false", "bootstrap=0", "max_minutes=null", "early_stopping.patience=null"])  # fmt: skip
    return Path(run_training(config, tmp_path_factory.mktemp("runs") / "lora"))


def _names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_pack_keeps_the_best_checkpoint_without_optimizer_state(lstm_run: Path, tmp_path: Path) -> None:
    from recipes.bench.pack import pack_path
    from recipes.bench.runinfo import read_run

    assert any((lstm_run / "checkpoints").glob("step-*/optimizer.pt"))  # the run has optimizer state ...
    result = pack_path(lstm_run, out=tmp_path / "lstm.tar.gz")
    names = _names(result.archive)
    assert not any(n.endswith("optimizer.pt") for n in names)  # ... the archive does not
    best = read_run(lstm_run).best_checkpoint().name
    ckpts = {n.split("/")[2] for n in names if n.split("/")[1:2] == ["checkpoints"] and len(n.split("/")) > 3}
    assert ckpts == {best}
    for wanted in ("run.json", "events.jsonl", "artifacts/metrics_summary.json", "artifacts/summary.md",
                   "artifacts/loss_curves.png", f"checkpoints/{best}/model.safetensors", f"checkpoints/{best}/vocab.json",
                   "PACK_MANIFEST.json"):  # fmt: skip
        assert f"lstm/{wanted}" in names
    assert result.size == result.archive.stat().st_size and result.size < 500_000
    with_opt = pack_path(lstm_run, out=tmp_path / "lstm_opt.tar.gz", include_optimizer=True)
    assert any(n.endswith(f"{best}/optimizer.pt") for n in _names(with_opt.archive))


@pytest.mark.slow  # trains a (tiny) BEHRT LoRA run through the real training loop
def test_pack_packs_only_the_lora_adapter(lora_run: Path, tmp_path: Path) -> None:
    from recipes.bench.pack import pack_path
    from recipes.bench.runinfo import read_run

    steps = sorted((lora_run / "checkpoints").glob("step-*"))
    assert len(steps) >= 2 and all((s / "adapter" / "adapter_config.json").is_file() for s in steps)
    best = read_run(lora_run).best_checkpoint()
    result = pack_path(lora_run, out=tmp_path / "lora.tar.gz")
    names = _names(result.archive)
    prefix = f"lora/checkpoints/{best.name}"
    assert f"{prefix}/adapter/adapter_config.json" in names
    assert any(n.startswith(f"{prefix}/adapter/adapter_model") for n in names)
    assert f"{prefix}/model.safetensors" not in names  # the merged full weights stay behind
    assert f"{prefix}/tokenizer.json" in names
    assert not any(n.startswith("lora/checkpoints/") and not n.startswith(prefix) for n in names)
    assert not any(n.endswith("optimizer.pt") for n in names)
    assert result.manifest["runs"][0]["adapter_only"] is True
    full = sum(f.stat().st_size for f in lora_run.rglob("*") if f.is_file())
    assert result.size < full / 2


def test_pack_an_interrupted_run_and_never_overwrite(
    lstm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.cli.app import main

    run = tmp_path / "interrupted"
    shutil.copytree(lstm_run, run)
    shutil.rmtree(run / "artifacts")  # died before the final test: no metrics_summary.json
    lines = (run / "events.jsonl").read_text().splitlines()
    kept = [line for line in lines if '"state":"finished"' not in line]
    (run / "events.jsonl").write_text(
        "\n".join(kept) + '\n{"t": 1, "step": 99, "kind": "tra'
    )  # torn last line
    (run / "checkpoints" / ".tmp-step-99").mkdir()
    (run / "checkpoints" / ".tmp-step-99" / "model.safetensors").write_bytes(b"half")
    archive = tmp_path / "interrupted.tar.gz"
    assert main(["pack", str(run), "--out", str(archive)]) == 0
    captured = capsys.readouterr()
    assert "incomplete" in captured.err and str(archive) in captured.out
    names = _names(archive)
    assert "interrupted/events.jsonl" in names and not any(".tmp-step" in n for n in names)
    assert any(n.endswith("model.safetensors") for n in names)  # the best checkpoint the last state names
    assert "interrupted/artifacts/summary.md" in names  # written for the archive: the run died before its own
    assert "This run is **incomplete**" in (run / "artifacts" / "summary.md").read_text()
    before = archive.read_bytes()
    assert main(["pack", str(run), "--out", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert archive.read_bytes() == before


def test_pack_a_benchmark_folder_with_its_report(lstm_run: Path, tmp_path: Path) -> None:
    from recipes.bench.compare import compare_runs
    from recipes.bench.pack import pack_path

    bench = tmp_path / "bench"
    (bench / "runs").mkdir(parents=True)
    shutil.copytree(lstm_run, bench / "runs" / "lstm")
    compare_runs([bench / "runs" / "lstm"], out_dir=tmp_path / "cmp")
    shutil.copy(tmp_path / "cmp" / "report.md", bench / "report.md")
    result = pack_path(bench)
    assert result.archive == tmp_path / "bench.tar.gz" and result.runs == 1
    names = _names(result.archive)
    assert "bench/report.md" in names and "bench/runs/lstm/run.json" in names
    assert (
        json.loads(tarfile.open(result.archive).extractfile("bench/PACK_MANIFEST.json").read())["runs"][0][
            "name"
        ]
        == "lstm"
    )
