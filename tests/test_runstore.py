"""Run directory: writer/reader round trip, crash safety, rank 0 only, follow mode with a concurrent writer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Severity
from ehrdebug.runstore import EventTail, RunLogger, follow, open_run, read_events


def test_round_trip_events_history_and_findings(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunLogger(run_dir, {"lr": 1e-4, "epochs": 3}, architecture="bart", size="small", task="seq2seq") as log:
        for step in range(1, 11):
            log.log_train(step, loss=3.0 / step, lr=1e-4, epoch=step / 10)
        log.log_eval(5, {"eval_loss": 1.2, "eval_accuracy": 0.4})
        log.log_eval(10, {"eval_loss": 1.0, "eval_accuracy": 0.5})
        log.log_findings(10, [Finding("curves.memorization", Severity.WARN, "train loss near zero", {"final": 0.0004})])
        log.log_sample(10, prompt="56 ASIAN M <demo>", output="<v> 486 <\\v> <END>")
    run = open_run(run_dir)
    assert run.kind == "ehrdebug"
    assert run.status == "finished"
    assert run.info["architecture"] == "bart" and run.info["config"]["epochs"] == 3
    assert "packages" in run.info["environment"]
    history = run.history()
    assert history.train.steps == list(range(1, 11))
    assert history.train.values[-1] == pytest.approx(0.3)
    assert history.evals["eval_loss"].values == [1.2, 1.0]
    assert history.metrics["eval_accuracy"].values == [0.4, 0.5]
    assert run.best_eval() == ("eval_loss", 10, 1.0)
    [finding] = run.findings()
    assert finding.severity == Severity.WARN and finding.evidence["final"] == 0.0004
    assert [a["probe"] for a in run.alerts()] == ["curves.memorization"]
    assert run.samples()[0]["output"].endswith("<END>")
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        assert {"t", "step", "kind"} <= set(event)


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    with RunLogger(tmp_path / "r") as log:
        log.log_train(1, loss=1.0)
    before = (tmp_path / "r" / "events.jsonl").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        RunLogger(tmp_path / "r")
    assert (tmp_path / "r" / "events.jsonl").read_bytes() == before
    with RunLogger(tmp_path / "r", resume=True) as log:
        log.log_train(2, loss=0.5)
    run = open_run(tmp_path / "r")
    assert run.history().train.values == [1.0, 0.5]
    assert [e["state"] for e in run.events(kinds=("status",))] == ["started", "finished", "resumed", "finished"]


def test_exception_marks_run_crashed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with RunLogger(tmp_path / "r") as log:
            log.log_train(1, loss=1.0)
            raise RuntimeError("CUDA out of memory")
    run = open_run(tmp_path / "r")
    assert run.status == "crashed"
    assert "out of memory" in run.events(kinds=("status",))[-1]["error"]


def test_killed_process_leaves_a_readable_log(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-run: every flushed line is readable and the run reads as live/stale."""
    script = textwrap.dedent(
        f"""
        import time
        from ehrdebug.runstore import RunLogger
        log = RunLogger({str(tmp_path / 'r')!r})
        for step in range(1, 1000):
            log.log_train(step, loss=1.0 / step)
            if step == 50:
                print('ready', flush=True)
            time.sleep(0.001)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait()
    run = open_run(tmp_path / "r")
    steps = run.history().train.steps
    assert len(steps) >= 50 and steps == sorted(steps)
    assert run.status in ("live", "stale")


def test_non_zero_rank_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    log = RunLogger(tmp_path / "r")
    log.log_train(1, loss=1.0)
    log.finish()
    assert not (tmp_path / "r").exists()


def test_checkpoint_is_safetensors_and_atomic(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    with RunLogger(tmp_path / "r") as log:
        for step in (10, 20, 30):
            log.save_checkpoint(step, model, optimizer=optimizer, extra_state={"epoch": step / 10}, keep_last=2)
    run = open_run(tmp_path / "r")
    assert [c.step for c in run.checkpoints()] == [20, 30]
    latest = run.latest_checkpoint()
    assert latest is not None
    weights = load_file(str(latest.path / "model.safetensors"))
    assert torch.equal(weights["0.weight"], model[0].weight.detach())
    assert json.loads((latest.path / "trainer_state.json").read_text())["epoch"] == 3.0
    assert (latest.path / "optimizer.pt").exists()
    assert not list((tmp_path / "r" / "checkpoints").glob(".tmp-*"))
    assert [e["path"] for e in run.events(kinds=("checkpoint",))][-1] == "checkpoints/step-30"


def test_torn_last_line_is_held_back_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"t":1,"step":1,"kind":"train","loss":1.0}\n{"t":2,"step":2,"ki')
    tail = EventTail(path)
    assert [e["step"] for e in tail.read_new()] == [1]
    assert tail.pending_partial
    assert [e["step"] for e in read_events(path)] == [1]
    with open(path, "a") as fh:
        fh.write('nd":"train","loss":0.5}\n')
    assert [e["loss"] for e in tail.read_new()] == [0.5]
    assert tail.read_new() == []


def test_follow_while_another_process_appends(tmp_path: Path) -> None:
    """A separate writer process appends in bursts (with torn writes); the follower sees every event once, in order."""
    run_dir = tmp_path / "live"
    script = textwrap.dedent(
        f"""
        import json, os, time
        path = os.path.join({str(run_dir)!r}, 'events.jsonl')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'a') as fh:
            for step in range(1, 201):
                line = json.dumps({{'t': time.time(), 'step': step, 'kind': 'train', 'loss': 1.0 / step}}) + '\\n'
                half = len(line) // 2
                fh.write(line[:half]); fh.flush(); time.sleep(0.002)
                fh.write(line[half:]); fh.flush()
            fh.write(json.dumps({{'t': time.time(), 'step': 200, 'kind': 'status', 'state': 'finished'}}) + '\\n')
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 10
    while not (run_dir / "events.jsonl").exists() and time.time() < deadline:
        time.sleep(0.01)
    steps = [e["step"] for e in follow(run_dir / "events.jsonl", poll=0.02, timeout=30) if e["kind"] == "train"]
    proc.wait(timeout=30)
    assert steps == list(range(1, 201))


def test_open_run_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        open_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not a run"):
        open_run(tmp_path / "empty")


def test_nan_loss_survives_the_round_trip_and_is_caught(tmp_path: Path) -> None:
    """A NaN loss must reach the curve probes (it is written as "nan" so the log stays strict JSON)."""
    import math

    from probes.curves import divergence

    with RunLogger(tmp_path / "r") as log:
        for step in range(1, 21):
            log.log_train(step, loss=1.0 / step if step < 15 else float("nan"))
    history = open_run(tmp_path / "r").history()
    assert len(history.train) == 20 and math.isnan(history.train.values[-1])
    assert max(f.severity for f in divergence(history)) == Severity.FAIL


def test_large_log_fast_reader_matches_the_line_reader(tmp_path: Path) -> None:
    """Above 8 MB history() reads column-wise; it must give exactly what the line-by-line reader gives."""
    from ehrdebug.runstore import reader

    run_dir = tmp_path / "big"
    run_dir.mkdir()
    lines = []
    for step in range(1, 90_001):
        lines.append(json.dumps({"t": 1.0 + step, "step": step, "kind": "train", "loss": 5.0 / step ** 0.5,
                                 "lr": 1e-4, "epoch": step / 9000}, separators=(",", ":")))
        if step % 1000 == 0:
            lines.append(json.dumps({"t": 1.0, "step": step, "kind": "eval", "eval_loss": 2.0 / step ** 0.3,
                                     "eval_test_loss": 2.5 / step ** 0.3}, separators=(",", ":")))
            lines.append(json.dumps({"t": 1.0, "step": step, "kind": "finding", "probe": "x", "severity": "info",
                                     "title": "t", "evidence": {"kind": "nested"}}, separators=(",", ":")))
    (run_dir / "events.jsonl").write_text("\n".join(lines) + '\n{"t":1,"step":90001,"ki')
    assert (run_dir / "events.jsonl").stat().st_size > reader.FAST_READ_BYTES
    run = open_run(run_dir)
    fast = run.history()
    slow = reader.Run.history(run)
    assert fast.train.steps == slow.train.steps and fast.train.values == pytest.approx(slow.train.values)
    assert set(fast.evals) == set(slow.evals) == {"eval_loss", "eval_test_loss"}
    assert fast.evals["eval_test_loss"].values == pytest.approx(slow.evals["eval_test_loss"].values)
    assert fast.metrics["lr"].values == pytest.approx(slow.metrics["lr"].values)
