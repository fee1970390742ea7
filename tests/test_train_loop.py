"""The training loop end to end on a few steps: run directory contents, early stopping, resume.

Runs on a small stand-in dataset written into tmp (same format as sample_data/ehr), so it does not
depend on the shipped sample; the shipped tiny BART base makes each step a fraction of a second.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from recipes.train.config import load_recipe_config

REPO = Path(__file__).resolve().parents[1]
CODES = ["250.00", "401.9", "428.0", "414.01", "V3001", "486", "427.31", "272.4"]
ETHNICITIES = ["WHITE", "ASIAN", "BLACK/AFRICAN AMERICAN", "UNKNOWN/NOT SPECIFIED"]


def write_standin(root: Path, n_train: int = 48, seed: int = 0) -> Path:
    """``<root>/seq2seq/{split}.jsonl`` + ``codes.txt`` and ``<root>/diagnosis/{split}.jsonl``."""
    rng = random.Random(seed)
    (root / "seq2seq").mkdir(parents=True)
    (root / "diagnosis").mkdir(parents=True)
    for split, n in (("train", n_train), ("validation", 12), ("test", 12)):
        with (root / "seq2seq" / f"{split}.jsonl").open("w") as fh:
            for i in range(n):
                prompt = f"{rng.randint(20, 90)} {rng.choice(ETHNICITIES)} {rng.choice('MF')} <demo>"
                visits = " ".join("<v> " + " ".join(rng.sample(CODES, rng.randint(1, 3))) + " <\\v>" for _ in range(rng.randint(1, 2)))
                target = f"{visits} <END>"
                fh.write(json.dumps({"patient_id": i, "prompt": prompt, "target": target, "text": f"{prompt} {target}"}) + "\n")
        with (root / "diagnosis" / f"{split}.jsonl").open("w") as fh:
            for _ in range(n):
                label, sym = rng.choice([("Pneumonia", "fever, cough, infiltrate"), ("Anemia", "fatigue, pallor, low Hb")])
                fh.write(json.dumps({"input": f"Symptoms: {sym}. What is the most likely diagnosis?", "output": label, "specialty": "x"}) + "\n")
    (root / "seq2seq" / "codes.txt").write_text("\n".join(CODES) + "\n")
    return root


TINY = ["max_steps=4", "eval_every=2", "num_eval_generations=2", "num_test_generations=2", "generation.max_new_tokens=8",
        "log_every=1", "batch_size=8", "threads=1"]  # fmt: skip


def test_bart_run_writes_the_run_directory_and_resumes(tmp_path: Path) -> None:
    from ehrdebug.runstore import open_run
    from recipes.train.loop import run_training

    data = write_standin(tmp_path / "data")
    run = tmp_path / "run"
    config = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml", [*TINY, f"data.root={data}", f"out={run}"])
    assert run_training(config) == run
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    kinds = {e["kind"] for e in events}
    assert {"train", "eval", "sample", "checkpoint", "status"} <= kinds
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4]
    for key in ("eval_loss", "eval_structural_validity", "eval_valid_code_rate", "eval_p_visit_after_demo", "eval_p_eos_after_demo"):
        assert key in evals[-1]
    assert events[-1]["kind"] == "status" and events[-1]["state"] == "finished"
    ckpt = run / "checkpoints" / "step-4"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "optimizer.pt").is_file() and (ckpt / "tokenizer.json").is_file()
    assert (run / "artifacts" / "loss.png").stat().st_size > 1000
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    assert summary["steps"] == 4 and "test_structural_validity" in summary["test"]
    assert summary["tokens"]["demo_pieces"][-1] == "<demo>"
    info = json.loads((run / "run.json").read_text())
    assert info["architecture"] == "bart" and info["config"]["lr"] == config["lr"]
    assert Path(info["data"]["train"]).name == "train.jsonl"
    assert open_run(run).latest_checkpoint() is not None
    assert 'end_token = "<END>"' in (run / "ehrdebug.toml").read_text()

    # the same directory without resume=true is refused; with it, training continues at step 5
    with pytest.raises(UserError, match="resume"):
        run_training(config)
    resumed = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml",
                          [*TINY, f"data.root={data}", f"out={run}", "resume=true", "max_steps=6"])  # fmt: skip
    run_training(resumed)
    train_steps = [json.loads(x)["step"] for x in (run / "events.jsonl").read_text().splitlines() if '"kind":"train"' in x]
    assert train_steps == [1, 2, 3, 4, 5, 6]
    assert (run / "checkpoints" / "step-6").is_dir()


def test_early_stopping_stops_and_keeps_the_best_checkpoint(tmp_path: Path) -> None:
    from recipes.train.loop import run_training

    data = write_standin(tmp_path / "data", n_train=16)
    # an absurd learning rate makes eval loss rise after the first evaluation
    config = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml",
                         [*TINY, "max_steps=40", "eval_every=1", "lr=0.5", "warmup_steps=0", "early_stopping.patience=2",
                          "keep_checkpoints=1", "final_test=false", f"data.root={data}", f"out={tmp_path / 'run'}"])  # fmt: skip
    run = run_training(config)
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    assert summary["steps"] < 40
    assert summary["steps"] == summary["best_step"] + 2
    assert (run / summary["best_checkpoint"]).is_dir()  # kept although older than keep_checkpoints
    alerts = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if '"kind":"alert"' in x]
    assert any("early stopping" in a["message"] for a in alerts)


def test_early_stopping_waits_for_min_epochs(tmp_path: Path) -> None:
    """The same rising eval loss, but stopping is not allowed before epoch 3 (4 steps an epoch here)."""
    from recipes.train.loop import run_training

    data = write_standin(tmp_path / "data", n_train=16)
    config = load_recipe_config(REPO / "recipes/configs/bart_ehrgen_small.yaml",
                         [*TINY, "max_steps=40", "eval_every=1", "lr=0.5", "warmup_steps=0", "early_stopping.patience=2",
                          "early_stopping.min_epochs=3", "batch_size=4", "keep_checkpoints=1", "final_test=false",
                          f"data.root={data}", f"out={tmp_path / 'run'}"])  # fmt: skip
    run = run_training(config)
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    assert 12 <= summary["steps"] < 40  # patience ran out long before step 12, but stopping waited for it
    assert summary["steps"] > summary["best_step"] + 2


def test_t5_run_on_the_standin_logs_passed_in_probes(tmp_path: Path) -> None:
    from ehrdebug.findings import Finding, Severity
    from recipes.train.loop import run_training

    seen: list[int] = []

    def probe(model, tokenizer, config, step):  # a probe passed in by the caller (the core never imports probes)
        seen.append(step)
        return [Finding("test.probe", Severity.WARN, f"looked at step {step}", evidence={"vocab": len(tokenizer)})]

    data = write_standin(tmp_path / "data")
    config = load_recipe_config(REPO / "recipes/configs/t5_diagnosis_small.yaml", [*TINY, f"data.root={data}", f"out={tmp_path / 'run'}"])
    run = run_training(config, probes=probe)
    assert seen == [2, 4]
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "finding" and e.get("probe") == "test.probe"] == [2, 4]
    assert any(e["kind"] == "alert" and e.get("probe") == "test.probe" for e in events)
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    assert set(summary["test"]) == {"test_accuracy", "test_empty_rate", "test_repetition_rate", "test_echo_rate"}
    samples = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if '"kind":"sample"' in x]
    assert samples and {"prompt", "output", "expected", "correct"} <= set(samples[0])
