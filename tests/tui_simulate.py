"""Test scaffolding: synthetic runs written with the real ``RunLogger``, for the TUI's tests and benchmarks.

``python tests/tui_simulate.py RUN_DIR --steps 200 --delay 0.05`` writes a run the way a training
process does (a line at a time, flushed), so the Live run screen can be watched following it.
The curves are arithmetic, not a model: they exist to exercise the views, never to test a probe.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any


def _loss(step: int, total: int) -> float:
    return 2.3 * math.exp(-6.0 * step / max(total, 1)) + 0.0004


def write_run(
    run_dir: str | os.PathLike[str],
    steps: int = 200,
    eval_every: int = 20,
    delay: float = 0.0,
    finish: bool = True,
    config: dict[str, Any] | None = None,
    architecture: str = "BartForConditionalGeneration",
    alert_at: int | None = None,
) -> Path:
    """Write a run step by step; ``delay`` seconds between steps makes it a live run to follow."""
    from ehrdebug.runstore import RunLogger

    cfg = {"max_steps": steps, "learning_rate": 1e-4, "num_epochs": 5, **(config or {})}
    logger = RunLogger(run_dir, cfg, architecture=architecture, task="ehr-generation")
    for step in range(1, steps + 1):
        lr = cfg["learning_rate"] * min(1.0, step / 10) * (1 - step / (steps + 1))
        logger.log_train(
            step, loss=_loss(step, steps), lr=lr, epoch=round(5 * step / steps, 4), samples_per_second=64.0
        )
        if eval_every and step % eval_every == 0:
            val = _loss(step, steps) + 0.05 + 0.4 * max(0.0, step / steps - 0.6)
            logger.log_eval(step, {"eval_loss": val, "eval_accuracy": 1 - val / 3})
            logger.log_sample(
                step, prompt="56 ASIAN M <demo>", output="56 ASIAN M <demo> ASIAN m <demoing> 56 ASICEMo>"
            )
        if alert_at is not None and step == alert_at:
            logger.alert(
                step,
                "warn",
                "validation loss rose 12% above its best: overfitting",
                probe="curves.overfitting",
            )
        if delay:
            time.sleep(delay)
    if finish:
        logger.finish("finished")
    else:
        logger._fh.close()  # leave the run open-ended, as a process killed mid-run would
        logger._finished = True
    return Path(run_dir)


def write_big_log(run_dir: str | os.PathLike[str], lines: int = 1_000_000, eval_every: int = 100) -> Path:
    """A run with ``lines`` event lines, written in bulk (the format RunLogger writes, much faster)."""
    from ehrdebug.runstore.events import encode_event

    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoints").mkdir(exist_ok=True)
    (path / "run.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "architecture": "BartForConditionalGeneration",
                "config": {"max_steps": lines},
            }
        ),
        encoding="utf-8",
    )
    t = time.time() - lines * 0.01
    with open(path / "events.jsonl", "w", encoding="utf-8") as fh:
        fh.write(encode_event("status", 0, {"state": "started"}, t=t))
        buf = []
        for step in range(1, lines):
            if step % eval_every == 0:
                buf.append(
                    encode_event("eval", step, {"eval_loss": _loss(step, lines) + 0.05}, t=t + step * 0.01)
                )
            else:
                buf.append(
                    encode_event(
                        "train",
                        step,
                        {"loss": _loss(step, lines), "lr": 1e-4, "epoch": step / 1000},
                        t=t + step * 0.01,
                    )
                )
            if len(buf) >= 10000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--alert-at", type=int, default=None)
    parser.add_argument("--big", type=int, default=0, help="write a log of this many lines in bulk instead")
    args = parser.parse_args()
    if args.big:
        write_big_log(args.run_dir, args.big)
    else:
        write_run(args.run_dir, args.steps, args.eval_every, args.delay, alert_at=args.alert_at)


if __name__ == "__main__":
    main()


EHR_LINES = [
    "56 ASIAN M <demo> <v> V3001 V053 <\\v> <END>",
    "85 UNKNOWN/NOT SPECIFIED F <demo> <v> 4019 25000 <\\v> <v> 486 <\\v> <END>",
    "31 HISPANIC OR LATINO F <demo> <v> 6180 2724 <\\v> <END>",
    "67 WHITE M <demo> <v> 41401 4280 42731 <\\v> <END>",
]


def write_tokenizer_run(
    run_dir: str | os.PathLike[str],
    register: tuple[str, ...] = ("<v>", "<\\v>", "<END>"),
    with_model: bool = True,
) -> Path:
    """A finished run whose checkpoint holds a small byte-level BPE tokenizer (BART-like) trained on
    EHR-like text plus ``register`` added as tokens, and a data file of training records."""
    from recipes.train.pretrain_corpus import train_bpe_tokenizer

    path = write_run(run_dir, steps=40, eval_every=10)
    corpus = [
        "The patient was admitted with chest pain and discharged home after three days of observation.",
        "Diagnosis codes are recorded at discharge; the demographic line holds age, ethnicity and sex.",
        "Asian, white and hispanic patients; unknown or not specified ethnicity; male and female.",
    ] * 20 + EHR_LINES * 5
    ckpt = path / "checkpoints" / "step-40"
    ckpt.mkdir(parents=True, exist_ok=True)
    tok = train_bpe_tokenizer(corpus, 400, ckpt)
    if register:
        tok.add_tokens(list(register))
        tok.save_pretrained(ckpt)
    if with_model:
        import torch

        from recipes.train.pretrain import build_model

        torch.manual_seed(0)
        build_model("bart", tok).save_pretrained(ckpt)  # untrained: exercises the sampler, predicts nothing
    data = path / "train.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for line in EHR_LINES:
            prompt, _, rest = line.partition("<demo>")
            fh.write(json.dumps({"text": prompt + "<demo>", "target": "<demo>" + rest, "full": line}) + "\n")
    info_path = path / "run.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["data"] = str(data)
    info_path.write_text(json.dumps(info), encoding="utf-8")
    return path


async def open_findings_screen(app: Any, pilot: Any, timeout: float = 30.0) -> Any:
    """From the Runs screen of ``app`` (running under ``run_test``): press ``f`` and return the Findings
    screen once it shows findings (a test fails when it does not within ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while not getattr(app.screen, "rows", None):
        assert time.monotonic() < end, "the Runs screen listed no runs"
        await pilot.pause(0.05)
    await pilot.press("f")
    while type(app.screen).__name__ != "FindingsScreen" or not app.screen.findings:
        assert time.monotonic() < end, "the Findings screen showed no findings"
        await pilot.pause(0.05)
    return app.screen
