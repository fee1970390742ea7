"""Throughput of `check tokenizer`'s probe path against raw ``tokenizers`` encode_batch, same sequences.

    python benchmarks/bench_check_tokenizer.py                      # 1,000,000 sequences
    python benchmarks/bench_check_tokenizer.py --n 200000 --tokenizer DIR

The tokenizer is the real GPT-2 BPE from ``$EHRDEBUG_REAL_ASSETS/tokenizers/gpt2_bpe`` when present,
else the tiny test fixture. Sequences are synthetic seed-000-format EHR sequences (ICD-9 codes drawn
from a Zipf-like distribution over ~3,000 codes). Raw = ``Tokenizer.encode_batch`` over the same texts
in the probe's chunk size (one call over a million texts would hold every Encoding in memory at once).
Raw and probe passes alternate for ``--rounds`` rounds and the best of each is compared, in wall time
and in CPU time of this process (robust when other processes share the cores).
Goal: probe path ≥ 0.8× raw.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ETHNICITIES = ["ASIAN", "WHITE", "BLACK/AFRICAN AMERICAN", "HISPANIC OR LATINO", "UNKNOWN/NOT SPECIFIED"]


def make_codes(rng: random.Random, n: int = 3000) -> list[str]:
    codes: set[str] = set()
    while len(codes) < n:
        kind = rng.random()
        if kind < 0.15:
            codes.add(f"V{rng.randint(1, 91):02d}{rng.randint(0, 99):02d}")
        elif kind < 0.2:
            codes.add(f"E{rng.randint(800, 999)}{rng.randint(0, 9)}")
        elif kind < 0.3:
            codes.add(f"{rng.randint(1, 999):03d}.{rng.randint(0, 99):02d}")
        else:
            codes.add(f"{rng.randint(1, 999):03d}{rng.randint(0, 99):02d}"[: rng.choice((3, 4, 5))])
    return sorted(codes)


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    codes = make_codes(rng)
    weights = [1 / (i + 1) for i in range(len(codes))]
    cum = list(__import__("itertools").accumulate(weights))
    texts = []
    for _ in range(n):
        visits = []
        for _ in range(rng.randint(1, 4)):
            k = rng.randint(1, 6)
            visits.append("<v> " + " ".join(rng.choices(codes, cum_weights=cum, k=k)) + " <\\v>")
        texts.append(f"{rng.randint(18, 90)} {rng.choice(ETHNICITIES)} {rng.choice('MF')} <demo> {' '.join(visits)} <END>")
    return texts


def timed(fn) -> tuple[float, float, object]:
    """Wall seconds and CPU seconds of this process (all threads: rayon's workers included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def raw_pass(backend, texts: list[str], chunk: int) -> None:
    for i in range(0, len(texts), chunk):
        backend.encode_batch(texts[i : i + chunk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--tokenizer", default="")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from ehrdebug.config import EhrDebugConfig
    from ehrdebug.tokenizers import load_tokenizer
    from probes.tokenizer_common import CHUNK, SAMPLE_SIZE
    from probes.tokenizer_suite import run_tokenizer_probes

    path = args.tokenizer
    if not path:
        real = Path(os.environ.get("EHRDEBUG_REAL_ASSETS", ROOT.parent / "shared" / "real")) / "tokenizers" / "gpt2_bpe"
        path = str(real if real.is_dir() else ROOT / "tests" / "fixtures" / "tok" / "tiny_bpe")
    tok = load_tokenizer(path)
    t0 = time.perf_counter()
    texts = make_texts(args.n)
    print(f"tokenizer: {path} ({tok.family}); {len(texts):,} sequences generated in {time.perf_counter() - t0:.1f}s; "
          f"cpu cores: {os.cpu_count()}; chunk {CHUNK:,}; detailed sample {SAMPLE_SIZE:,}", flush=True)
    config = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"], max_length=128)

    n = len(texts)
    walls: dict[str, list[float]] = {"raw": [], "probe": []}
    cpus: dict[str, list[float]] = {"raw": [], "probe": []}
    findings: list = []
    for round_ in range(1, args.rounds + 1):  # alternate, so load from other processes hits both alike
        wall, cpu, _ = timed(lambda: raw_pass(tok.backend, texts, CHUNK))
        walls["raw"].append(wall)
        cpus["raw"].append(cpu)
        print(f"round {round_} raw encode_batch: {wall:6.1f}s wall = {n / wall:8,.0f} seq/s; {cpu:6.1f}s cpu", flush=True)
        wall, cpu, findings = timed(lambda: run_tokenizer_probes(tok, texts, config))
        walls["probe"].append(wall)
        cpus["probe"].append(cpu)
        print(f"round {round_} probe path:       {wall:6.1f}s wall = {n / wall:8,.0f} seq/s; {cpu:6.1f}s cpu", flush=True)
    raw_wall, probe_wall = min(walls["raw"]), min(walls["probe"])
    raw_cpu, probe_cpu = min(cpus["raw"]), min(cpus["probe"])
    print(f"RESULT (best of {args.rounds}) probe path {n / probe_wall:,.0f} seq/s vs raw encode_batch {n / raw_wall:,.0f} seq/s: "
          f"wall ratio {raw_wall / probe_wall:.2f}x, cpu-time ratio {raw_cpu / probe_cpu:.2f}x (goal >= 0.8x)")
    for f in findings:
        print(f"  [{f.severity.label}] {f.probe}: {f.title}")

if __name__ == "__main__":
    main()
