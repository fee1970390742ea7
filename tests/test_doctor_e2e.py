"""End to end: a healthy tiny ehrdebug run (real training, RunLogger, checkpoint, data) gets a doctor
report with no warn or fail from every suite (curves, data, tokenizer, model).

The run: a 2-layer GPT-2 with a word-level tokenizer (every structural token, code and word is one
token) trained on EHR lines ``56 ASIAN M <demo> <v> V3001 250.00 <\\v> <END>`` whose codes depend on the
patient's sex, with a validation split evaluated every 40 steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Report, Severity

CODES_M = ["V3001", "V053", "250.00", "486", "401.9", "428.0"]
CODES_F = ["427.31", "584.9", "599.0", "518.81", "038.9", "276.2"]
ETHNICITIES = ["ASIAN", "WHITE", "BLACK", "HISPANIC"]
STRUCTURAL = ["<demo>", "<v>", "<\\v>", "<END>"]


def ehr_record(rng: random.Random) -> dict[str, str]:
    sex = rng.choice("MF")
    pool = CODES_M if sex == "M" else CODES_F
    visits = " ".join(f"<v> {' '.join(sorted(rng.sample(pool, 2)))} <\\v>" for _ in range(rng.randint(1, 2)))
    return {"prompt": f"{rng.randint(20, 90)} {rng.choice(ETHNICITIES)} {sex} <demo>", "target": f"{visits} <END>"}


def word_tokenizer(corpus: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "</s>", *STRUCTURAL]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
    fast.add_special_tokens({"additional_special_tokens": STRUCTURAL})  # whole even when glued to a word
    return fast


def build_healthy_run(root: Path, steps: int = 400) -> Path:
    """Train the tiny model for real, logging with RunLogger; returns the run directory."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from ehrdebug.runstore import RunLogger

    rng = random.Random(0)
    train = [ehr_record(rng) for _ in range(600)]
    seen = {json.dumps(r) for r in train}
    val = [r for r in (ehr_record(rng) for _ in range(120)) if json.dumps(r) not in seen][:80]
    data = root / "data"
    data.mkdir(parents=True)
    for name, rows in (("train", train), ("validation", val)):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lines = [f"{r['prompt']} {r['target']}" for r in train + val]
    tok = word_tokenizer(lines)
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    vocab = max(tok.get_vocab().values()) + 1  # WordLevelTrainer may leave a gap in the ids
    model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                       bos_token_id=tok.eos_token_id))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)

    def batch(rows: list[str]) -> dict[str, Any]:
        enc = tok(rows, return_tensors="pt", padding=True)
        enc["labels"] = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        return enc

    val_batch = batch([f"{r['prompt']} {r['target']}" for r in val])
    run_dir = root / "run"
    try:
        with RunLogger(run_dir, {"lr": 3e-3, "steps": steps, "batch": 32}, architecture="gpt2", size="tiny",
                       task="causal", data={"train": str(data / "train.jsonl"),
                                            "validation": str(data / "validation.jsonl")}) as log:
            train_rng = random.Random(1)
            for step in range(1, steps + 1):
                model.train()
                loss = model(**batch([lines[train_rng.randrange(len(train))] for _ in range(32)])).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if step % 10 == 0:
                    log.log_train(step, loss=loss.item(), lr=sched.get_last_lr()[0], epoch=step * 32 / len(train))
                if step % 40 == 0:
                    model.eval()
                    with torch.no_grad():
                        log.log_eval(step, {"eval_loss": float(model(**val_batch).loss)})
            model.eval()
            log.save_checkpoint(steps, model, tok)
    finally:
        torch.set_num_threads(before)
    return run_dir


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_healthy_run(tmp_path_factory.mktemp("healthy"))


@pytest.mark.slow
def test_healthy_tiny_run_has_no_warn_or_fail(healthy_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", str(healthy_run), "--format", "json", "--fail-on", "warn"])
    out = capsys.readouterr().out
    report = Report.from_dict(json.loads(out))
    bad = [(f.probe, f.title) for f in report.findings if f.severity >= Severity.WARN]
    assert code == 0, bad
    assert not bad
    probes = {f.probe for f in report.findings}
    assert {"curves.overfitting", "curves.undertrained", "metrics.loss_vs_accuracy"} <= probes
    assert any(p.startswith("tokenizer.") for p in probes), probes
    assert any(p.startswith("model.") for p in probes), probes
    assert any(p.startswith("data.") for p in probes), probes
    assert report.meta["suites"]["model"]["ran"] and report.meta["suites"]["tokenizer"]["ran"]
    saved = healthy_run / "artifacts" / "doctor"
    assert (saved / "report.json").is_file() and (saved / "report.md").is_file()
    assert report.meta["seconds"] > 0  # timing is reported, and measured in benchmarks, not asserted here


@pytest.mark.slow
def test_doctor_on_the_checkpoint_itself(healthy_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = healthy_run / "checkpoints" / "step-400"
    data = healthy_run.parent / "data" / "validation.jsonl"
    code = main(["doctor", str(checkpoint), "--data", str(data), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["meta"]["kind"] == "checkpoint" and report["meta"]["model_dir"] == str(checkpoint)
    assert (healthy_run / "artifacts" / "doctor-step-400" / "report.json").is_file()
    assert not any(p.name.startswith("ehrdebug-doctor") for p in checkpoint.parent.iterdir())
