"""Two CPU processes (gloo DDP through accelerate, launched by torchrun) train one run: rank 0 writes one
correct run directory, every step once, and the other rank writes nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "data.max_train=64", "batch_size=16", "log_every=1", "threads=1", "max_steps=6", "eval_every=3", "device=cpu"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_processes_write_one_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "ehrdebug", "train", str(REPO / "recipes/configs/behrt_mlm_small.yaml"), *TINY, f"out={out}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # nothing written elsewhere by rank 1
    info = json.loads((out / "run.json").read_text())
    assert info["processes"] == 2 and info["architecture"] == "behrt"
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # once each, not once per rank
    assert [e["step"] for e in events if e["kind"] == "eval"] == [3, 6]
    assert [e["state"] for e in events if e["kind"] == "status"] == ["started", "finished"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6"]
    summary = json.loads((out / "artifacts" / "metrics_summary.json").read_text())
    assert summary["steps"] == 6 and "test_mlm_accuracy" in summary["test"]
    assert done.stdout.count("ehrdebug: run written") + done.stderr.count("ehrdebug: run written") == 2  # both ranks finished
