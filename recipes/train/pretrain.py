"""Pretrain the tiny offline bases shipped in ``sample_data/bases/{bart,t5,causal}``.

    python -m recipes.train.pretrain --all --out sample_data/bases

Each base is a real pretrained model in miniature — BART (text infilling), T5 (span corruption) and a
LLaMA-style causal LM (next token) — trained for a few CPU minutes on the standard library's docstrings
(general English, never EHR data) with general-English tokenizers. That gives them the priors the seed
failures come from: a strong pretrained EOS, trained embeddings that new tokens must compete with,
``<demo>`` splitting into subwords. Seeded and deterministic on a given Python/torch version.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from recipes.train.pretrain_corpus import stdlib_paragraphs, train_bpe_tokenizer, train_unigram_tokenizer

VOCAB_SIZE = 4096
SEQ_LEN = 64
BATCH_SIZE = 16
DEFAULT_STEPS = {"bart": 700, "t5": 700, "causal": 600}


def _chunks(tok, paragraphs: list[str], seq_len: int) -> list[list[int]]:
    """Tokenize paragraphs and pack them into chunks of at most ``seq_len`` ids (no special tokens)."""
    ids: list[int] = []
    for text in paragraphs:
        ids.extend(tok(text, add_special_tokens=False)["input_ids"])
        ids.append(-1)  # paragraph boundary
    chunks, cur = [], []
    for i in ids:
        if i == -1:
            if len(cur) >= 8:
                chunks.append(cur)
            cur = []
            continue
        cur.append(i)
        if len(cur) == seq_len:
            chunks.append(cur)
            cur = []
    return chunks


def _span_mask(n: int, rng: random.Random, ratio: float, mean_span: float) -> list[tuple[int, int]]:
    """Non-overlapping spans (start, end) covering about ``ratio`` of ``n`` positions."""
    budget = max(1, round(n * ratio))
    spans: list[tuple[int, int]] = []
    taken = [False] * n
    tries = 0
    while budget > 0 and tries < 50:
        tries += 1
        length = min(budget, max(1, round(rng.expovariate(1 / mean_span))))
        start = rng.randrange(0, max(1, n - length))
        if any(taken[max(0, start - 1) : start + length + 1]):
            continue
        for k in range(start, start + length):
            taken[k] = True
        spans.append((start, start + length))
        budget -= length
    return sorted(spans)


def bart_example(ids: list[int], tok, rng: random.Random) -> tuple[list[int], list[int]]:
    """Text infilling (BART): each span of ~30% of tokens becomes one <mask>; target is the original."""
    src, pos = [], 0
    for start, end in _span_mask(len(ids), rng, 0.3, 3.0):
        src += ids[pos:start] + [tok.mask_token_id]
        pos = end
    src += ids[pos:]
    wrap = [tok.bos_token_id], [tok.eos_token_id]
    return wrap[0] + src + wrap[1], wrap[0] + ids + wrap[1]


def t5_example(ids: list[int], tok, rng: random.Random) -> tuple[list[int], list[int]]:
    """Span corruption (T5): spans become <extra_id_i> in the input; the target lists them."""
    sentinels = tok.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(100)])
    src, tgt, pos = [], [], 0
    for i, (start, end) in enumerate(_span_mask(len(ids), rng, 0.15, 3.0)[:99]):
        src += ids[pos:start] + [sentinels[i]]
        tgt += [sentinels[i]] + ids[start:end]
        pos = end
    src += ids[pos:]
    return src + [tok.eos_token_id], tgt + [tok.eos_token_id]


def _batches(chunks, make: Callable, tok, batch_size: int, seed: int) -> Iterator[tuple]:
    import torch

    rng = random.Random(seed)
    pad = tok.pad_token_id
    while True:
        order = list(range(len(chunks)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            pairs = [make(chunks[j], tok, rng) for j in order[i : i + batch_size]]
            width_s = max(len(s) for s, _ in pairs)
            width_t = max(len(t) for _, t in pairs)
            src = torch.full((batch_size, width_s), pad)
            labels = torch.full((batch_size, width_t), -100)
            for r, (s, t) in enumerate(pairs):
                src[r, : len(s)] = torch.tensor(s)
                labels[r, : len(t)] = torch.tensor(t)
            yield src, (src != pad).long(), labels


def build_model(kind: str, tok):
    """The architectures of the shipped bases (a few MB each in fp16)."""
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        LlamaConfig,
        LlamaForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
    )

    vocab = len(tok)
    if kind == "bart":
        cfg = BartConfig(
            vocab_size=vocab, d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=384, decoder_ffn_dim=384, max_position_embeddings=256,
            dropout=0.1, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
            forced_bos_token_id=None, forced_eos_token_id=2, scale_embedding=False,
        )  # fmt: skip
        return BartForConditionalGeneration(cfg)
    if kind == "t5":
        cfg = T5Config(
            vocab_size=vocab, d_model=128, d_kv=32, d_ff=384, num_layers=2, num_decoder_layers=2, num_heads=4,
            dropout_rate=0.1, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
            feed_forward_proj="relu", tie_word_embeddings=True,
        )  # fmt: skip
        return T5ForConditionalGeneration(cfg)
    if kind == "causal":
        cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=128, intermediate_size=352, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0, eos_token_id=2, pad_token_id=1,
            tie_word_embeddings=True,
        )  # fmt: skip
        return LlamaForCausalLM(cfg)
    raise ValueError(f"unknown base kind {kind!r}")


def pretrain(kind: str, out: Path, steps: int | None = None, seed: int = 0, paragraphs: list[str] | None = None, threads: int = 1
) -> dict:
    """Train one base and save it (safetensors, fp16) with its tokenizer into ``out``; returns its stats."""
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    paragraphs = paragraphs if paragraphs is not None else stdlib_paragraphs()
    out.mkdir(parents=True, exist_ok=True)
    if kind == "t5":
        tok = train_unigram_tokenizer(paragraphs, VOCAB_SIZE, out)
    else:
        tok = train_bpe_tokenizer(paragraphs, VOCAB_SIZE, out)
    chunks = _chunks(tok, paragraphs, SEQ_LEN)
    model = build_model(kind, tok)
    steps = steps or DEFAULT_STEPS[kind]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * max(0.05, 1 - s / steps)
    )
    make = {"bart": bart_example, "t5": t5_example}.get(kind)
    batches = _batches(chunks, make or (lambda ids, _t, _r: (ids, ids)), tok, BATCH_SIZE, seed)
    model.train()
    losses: list[float] = []
    start = time.time()
    for step in range(steps):
        src, mask, labels = next(batches)
        loss = model(input_ids=src, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            print(f"[{kind}] step {step:5d} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} ({time.time() - start:.0f}s)")
    model.eval()
    model.half().save_pretrained(out, safe_serialization=True)
    # stored in fp16 to stay small; config says fp32 so from_pretrained(dir) loads (and trains) in fp32
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = "float32"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    stats = {
        "kind": kind,
        "objective": {"bart": "text infilling", "t5": "span corruption", "causal": "next token"}[kind],
        "corpus": "Python standard-library docstrings",
        "paragraphs": len(paragraphs),
        "chunks": len(chunks),
        "steps": steps,
        "seed": seed,
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.time() - start, 1),
        "batch_size": BATCH_SIZE,
        "seq_len": SEQ_LEN,
        "vocab_size": len(tok),
    }
    (out / "pretrain_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help="which bases: bart, t5, causal (default: all)")
    parser.add_argument("--all", action="store_true", help="pretrain bart, t5 and causal")
    parser.add_argument("--out", default="sample_data/bases", help="parent directory; one sub-directory per base")
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    args = parser.parse_args(argv)
    kinds = ["bart", "t5", "causal"] if args.all or not args.kinds else args.kinds
    paragraphs = stdlib_paragraphs()
    for kind in kinds:
        stats = pretrain(kind, Path(args.out) / kind, steps=args.steps, seed=args.seed, paragraphs=paragraphs, threads=args.threads)
        print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
