"""Training throughput of the loop on BEHRT small against a bare ``BertForMaskedLM`` loop of the same size.

    python benchmarks/bench_behrt_throughput.py [--steps 80] [--repeats 3] [--threads 1]

Both train masked-code modelling on the shipped codes records (same batch size, same sequences, same
15% masking with 80/10/10 replacement, AdamW + linear warmup + clipping), in the same process, one
after the other, alternating per repeat. The loop's rate is read from its own ``train`` events (one per
step, ``log_every=1``) between step 10 and the last step, so the start (building, tokenizer) and the
final evaluation are left out; the bare loop is timed over the same steps. The goal (issue 11) is a
ratio of at least 0.95; the machine is shared, so the min and median over repeats are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SKIP = 10  # steps left out at the start of each timing (allocator and cache warm-up)


def loop_rate(steps: int, threads: int, out: Path) -> tuple[float, int]:
    """Samples per second of ``run_training`` on behrt_mlm_small between step SKIP and ``steps``."""
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    config = load_recipe_config(REPO / "recipes/configs/behrt_mlm_small.yaml",
                                [f"max_steps={steps}", f"eval_every={steps}", "log_every=1", f"threads={threads}",
                                 "final_test=false", "device=cpu", f"out={out}", "keep_checkpoints=1"])  # fmt: skip
    run_training(config)
    times = {}
    for line in (out / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "train":
            times[event["step"]] = event["t"]
    return config["batch_size"] * (steps - SKIP) / (times[steps] - times[SKIP]), config["batch_size"]


def bare_rate(steps: int, threads: int, batch_size: int, model_kind: str = "bert") -> float:
    """Samples per second of a plain PyTorch loop over ``BertForMaskedLM`` of BEHRT small's size
    (``model_kind="behrt"``: over ``BehrtForMaskedLM`` itself, which isolates the loop's own overhead)."""
    import random

    import torch
    from transformers import BertConfig, BertForMaskedLM, get_scheduler

    from ehrdebug.codetok import build_code_tokenizer, encode_record
    from ehrdebug.models.batching import collate_codes, mask_codes
    from ehrdebug.models.behrt import TIERS
    from recipes.train.task import get_task

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from recipes.train.config import load_recipe_config

    task = get_task("behrt_mlm")

    cfg = load_recipe_config(REPO / "recipes/configs/behrt_mlm_small.yaml", [])
    records = task.records(cfg, "train")
    tokenizer = build_code_tokenizer(records, min_frequency=cfg["tokenizer"]["min_frequency"])
    features = [encode_record(tokenizer, r, cfg["max_length"]) for r in records]
    tier = TIERS["small"]
    if model_kind == "behrt":
        from ehrdebug.models.behrt import BehrtConfig, BehrtForMaskedLM

        model = BehrtForMaskedLM(BehrtConfig.tier("small", vocab_size=len(tokenizer)))
    else:
        model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=tier["hidden_size"],
                                       num_hidden_layers=tier["num_hidden_layers"], num_attention_heads=tier["num_attention_heads"],
                                       intermediate_size=tier["intermediate_size"], max_position_embeddings=cfg["max_length"]))  # fmt: skip
    streams = ("input_ids", "attention_mask", "labels") if model_kind == "bert" else ("input_ids", "attention_mask", "labels",
                                                                                     "age_ids", "segment_ids", "position_ids")  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=cfg["warmup_steps"], num_training_steps=steps)
    order = list(range(len(features)))
    model.train()
    step, start = 0, 0.0
    while step < steps:
        random.Random(step).shuffle(order)
        for i in range(0, len(order), batch_size):
            batch = mask_codes(collate_codes([features[j] for j in order[i : i + batch_size]]), len(tokenizer))
            loss = model(**{k: batch[k] for k in streams}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            float(loss)  # the loop reads the loss every step with log_every=1
            step += 1
            if step == SKIP:
                start = time.perf_counter()
            if step == steps:
                break
    return batch_size * (steps - SKIP) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    from recipes.train.config import load_recipe_config

    batch = load_recipe_config(REPO / "recipes/configs/behrt_mlm_small.yaml", [])["batch_size"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # the order alternates: a machine that gets busier favours neither
            runs = {"loop": lambda r=r: loop_rate(args.steps, args.threads, Path(tmp) / f"run{r}")[0],
                    "bare_bert": lambda: bare_rate(args.steps, args.threads, batch, "bert"),
                    "bare_behrt": lambda: bare_rate(args.steps, args.threads, batch, "behrt")}  # fmt: skip
            names = list(runs) if r % 2 == 0 else list(reversed(runs))
            rates = {name: runs[name]() for name in names}
            rows.append({**{f"{k}_samples_per_s": round(v, 1) for k, v in rates.items()},
                         "ratio": round(rates["loop"] / rates["bare_bert"], 3),
                         "ratio_same_model": round(rates["loop"] / rates["bare_behrt"], 3)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    summary = {"steps": args.steps, "repeats": args.repeats, "goal": 0.95}
    for key in ("ratio", "ratio_same_model"):
        values = [row[key] for row in rows]
        summary.update({f"{key}_min": min(values), f"{key}_median": statistics.median(values)})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
