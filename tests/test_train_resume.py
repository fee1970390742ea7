"""Evictions and resume (issue 15): kill -9 then resume gives the same next losses; SIGTERM/SIGINT
checkpoint at the next step boundary and exit non-zero; a crafted optimizer.pt does not run; nothing in a
used folder is overwritten. Tiny BEHRT MLM runs with dropout on (the tier's 0.1) and random masking, so
both the torch RNG and the data order must be restored for the losses to match.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ehrdebug.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "recipes" / "configs" / "behrt_mlm_small.yaml"
TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "data.max_train=96", "batch_size=16", "log_every=1", "threads=1", "warmup_steps=2", "eval_batch_size=64",
        "final_test=false", "early_stopping.patience=null", "keep_checkpoints=0", "device=cpu"]  # fmt: skip

CHILD = """
import json, os, signal, sys
from recipes.train.config import load_recipe_config
from recipes.train.loop import run_training
spec = json.loads(sys.argv[1])
def probe(model, tokenizer, config, step):
    if step == spec.get("kill_at"):
        os.kill(os.getpid(), signal.SIGKILL)  # an eviction: no handler, no last line
    return []
run_training(load_recipe_config(spec["config"], spec["overrides"]), probes=probe)
"""


def _child(overrides: list[str], **spec: object) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    payload = json.dumps({"config": str(CONFIG), "overrides": [*TINY, *overrides], **spec})
    return subprocess.Popen([sys.executable, "-c", CHILD, payload], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _events(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.strip()]


def _losses_after_last_start(run: Path) -> dict[int, float]:
    events = _events(run)
    start = max(i for i, e in enumerate(events) if e["kind"] == "status" and e["state"] in ("started", "resumed"))
    return {e["step"]: e["loss"] for e in events[start:] if e["kind"] == "train"}


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_losses(tmp_path: Path) -> None:
    steps = ["max_steps=14", "eval_every=4"]
    straight = _child([*steps, f"out={tmp_path / 'a'}"])
    killed = _child([*steps, f"out={tmp_path / 'b'}"], kill_at=8)  # after step-4 was saved, before step-8 is
    assert straight.wait(timeout=240) == 0, straight.stderr.read()[-2000:]
    assert killed.wait(timeout=240) == -signal.SIGKILL
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["step-4"]
    resumed = _child([*steps, f"out={tmp_path / 'b'}", "resume=true"])
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()[-2000:]
    reference = _losses_after_last_start(tmp_path / "a")
    again = _losses_after_last_start(tmp_path / "b")
    assert sorted(again) == list(range(5, 15))
    assert max(abs(again[s] - reference[s]) for s in again) < 1e-6, (again, reference)
    assert len({round(v, 6) for v in again.values()}) > 5  # real, changing losses (not a constant)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_checkpoint_at_the_next_step_and_resume(tmp_path: Path, sig: signal.Signals) -> None:
    run = tmp_path / "run"
    child = _child(["max_steps=3000", "eval_every=1000", f"out={run}"])
    log = run / "events.jsonl"
    deadline = time.time() + 180
    while not (log.is_file() and '"step":3,' in log.read_text()):  # training is under way
        assert child.poll() is None and time.time() < deadline, child.stderr.read()[-2000:]
        time.sleep(0.05)
    child.send_signal(sig)
    code = child.wait(timeout=120)
    assert code == 128 + sig, child.stderr.read()[-2000:]
    last = _events(run)[-1]
    assert last["kind"] == "status" and last["state"] == "interrupted" and last["signal"] == sig.name
    saved = sorted(int(p.name.split("-")[1]) for p in (run / "checkpoints").iterdir())
    assert saved == [last["step"]] and last["step"] >= 3  # one checkpoint, at the step it stopped after
    state = json.loads((run / "checkpoints" / f"step-{last['step']}" / "trainer_state.json").read_text())
    assert state["loop"]["step"] == last["step"] and "rng" in state

    resumed = _child([f"max_steps={last['step'] + 3}", "eval_every=1000", f"out={run}", "resume=true"])
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()[-2000:]
    assert sorted(_losses_after_last_start(run)) == [last["step"] + 1, last["step"] + 2, last["step"] + 3]
    assert _events(run)[-1]["state"] == "finished"


def _tiny_run(tmp_path: Path, name: str = "run", extra: tuple[str, ...] = ()) -> tuple[Path, dict]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    config = load_recipe_config(CONFIG, [*TINY, "max_steps=2", "eval_every=2", f"out={tmp_path / name}", *extra])
    return run_training(config), config


def test_a_crafted_optimizer_pt_does_not_run_on_resume(tmp_path: Path) -> None:
    import torch

    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run, _ = _tiny_run(tmp_path)
    marker = tmp_path / "pwned"

    class Payload:  # unpickling calls Path.touch(marker): code execution
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"optimizer": Payload(), "scheduler": {}}, run / "checkpoints" / "step-2" / "optimizer.pt")
    config = load_recipe_config(CONFIG, [*TINY, "max_steps=4", "eval_every=2", f"out={run}", "resume=true"])
    with pytest.raises(UserError, match="not a plain optimizer state") as err:
        run_training(config)
    assert not marker.exists() and "\n" not in str(err.value)


@pytest.mark.parametrize("contents", [{"weights.bin": "x"}, {"run.json": "{}"}, {"sub/notes.txt": "mine"}])
@pytest.mark.parametrize("resume", [False, True])
def test_a_used_folder_is_refused_before_the_model_loads(tmp_path: Path, contents: dict, resume: bool) -> None:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    out = tmp_path / "out"
    for name, text in contents.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # init_from points nowhere: if the folder were checked after the model, that error would come first
    config = load_recipe_config(CONFIG, [*TINY, f"out={out}", f"init_from={tmp_path / 'missing'}", f"resume={str(resume).lower()}"])
    with pytest.raises(UserError, match="not empty"):
        run_training(config)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_from_a_corrupt_trainer_state_is_a_user_error(tmp_path: Path) -> None:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    run, _ = _tiny_run(tmp_path)
    config = load_recipe_config(CONFIG, [*TINY, "max_steps=4", f"out={run}", "resume=true"])
    for text in ("{}", '{"loop": {"step": NaN, "epoch": 0}}', "not json"):
        (run / "checkpoints" / "step-2" / "trainer_state.json").write_text(text)
        with pytest.raises(UserError, match="cannot resume"):
            run_training(config)
