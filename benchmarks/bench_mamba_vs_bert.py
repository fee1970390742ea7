"""EHRMamba against a Transformer (CEHR-BERT) of matched parameter count: time and memory per training step
from 256 to 8,192 tokens, their ratio, their log-log scaling exponents and the crossover length (seed 004,
hypotheses 2 and 4).

    python benchmarks/bench_mamba_vs_bert.py                       # CPU default: batch 1, width 64, ~2-3 min
    python benchmarks/bench_mamba_vs_bert.py --hidden 256 --layers 4 --batch 4 --budget 120 --bigbird
    python benchmarks/bench_mamba_vs_bert.py --device cuda         # + the same Mamba without its kernels

Both models are this project's own (``ehrdebug.models``): EHRMamba (CEHR embeddings → transformers' Mamba;
off the CUDA kernels, mambapy's parallel scan, or ``--mamba-path loop`` for transformers' per-token loop) and
CEHR-BERT with full attention (``--bigbird`` adds the block-sparse variant). Each BERT layer's feed-forward
width is chosen so that its parameters equal one Mamba block's; both models have the same width, depth,
embeddings and output layer, and the counts are printed. One training step = forward, loss over every
position, backward, AdamW step; the figure is the mean of ``--steps`` steps after one warm-up step.

Memory: on CPU each (model, length) runs in a forked process and the figure is its peak resident memory
(VmHWM) above what it held before building the model (model, optimizer state and activations); on CUDA,
``torch.cuda.max_memory_allocated``. A model stops at the first length that runs out of memory or past
``--budget`` seconds (a measurement killed there reads "budget"). The exponent ``k`` of ``time ∝ length^k``
is a least-squares fit in log-log over the lengths measured; the crossover is the first measured length
where Mamba is cheaper, interpolated between neighbours in log-log, or extrapolated from both fits
(marked) when it lies beyond the lengths measured.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
VOCAB = 512
TAIL = (
    3  # the longest lengths measured: the scaling regime a short sequence hides (fixed costs dominate there)
)


def _block_kernels() -> None:
    """Hide mamba-ssm / causal-conv1d before transformers imports them: the reference path on a GPU."""
    import importlib.abc

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
            if name.split(".")[0] in ("mamba_ssm", "causal_conv1d"):
                raise ModuleNotFoundError(f"{name} hidden by --no-kernels")
            return None

    sys.meta_path.insert(0, Blocker())


def build(kind: str, args: argparse.Namespace) -> Any:
    """The model of ``kind`` ("mamba", "bert", "bigbird") at the benchmark's width and depth."""
    from ehrdebug.models.cehrbert import CehrBertConfig, CehrBertForMaskedLM
    from ehrdebug.models.ehrmamba import EhrMambaConfig, EhrMambaForCausalLM

    mamba_cfg = EhrMambaConfig(vocab_size=VOCAB, hidden_size=args.hidden, num_hidden_layers=args.layers, state_size=16,
                               hidden_dropout_prob=0.0, use_mambapy=args.mamba_path == "mambapy", max_visits=8)  # fmt: skip
    if kind == "mamba":
        return EhrMambaForCausalLM(mamba_cfg)
    block = sum(p.numel() for p in EhrMambaForCausalLM(mamba_cfg).ehrmamba.backbone.layers[0].parameters())
    h = args.hidden
    # a BERT layer: 4h^2 + 4h (attention) + 2h (LayerNorm) + 2·h·I + I + h (feed-forward) + 2h (LayerNorm)
    intermediate = max(8, round((block - 4 * h * h - 9 * h) / (2 * h + 1)))
    heads = max(1, h // 32)
    return CehrBertForMaskedLM(CehrBertConfig(
        vocab_size=VOCAB, hidden_size=h, num_hidden_layers=args.layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=max(args.lengths) + 64, max_visits=8,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, attention="bigbird" if kind == "bigbird" else "full",
        block_size=64, num_random_blocks=3, attn_implementation=args.attn if kind == "bert" else "eager",
    ))  # fmt: skip


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(kind: str, length: int, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per training step and peak memory (MiB) of ``kind`` at ``length`` tokens."""
    import torch

    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        try:
            with open("/proc/self/clear_refs", "w", encoding="utf-8") as fh:
                fh.write("5")  # reset the peak-RSS mark to the current RSS
        except OSError:
            pass
        base = _rss_kib("VmRSS")
    model = build(kind, args).to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(10, VOCAB, (args.batch, length), device=device)
    mask = torch.ones_like(ids)
    times = []
    for _ in range(args.steps + 1):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda and args.bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    peak = (
        (torch.cuda.max_memory_allocated(device) - base) / 2**20
        if cuda
        else (_rss_kib("VmHWM") - base) / 1024
    )
    return {
        "seconds": sum(times[1:]) / args.steps,
        "peak_mib": peak,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _child(kind: str, length: int, args: argparse.Namespace, conn: Any) -> None:
    import torch

    torch.set_num_threads(args.threads)
    try:
        conn.send(measure(kind, length, args))
    except (RuntimeError, MemoryError) as exc:
        conn.send(
            {
                "error": "oom"
                if "memory" in str(exc).lower() or isinstance(exc, MemoryError)
                else f"error: {exc}"
            }
        )


def run_one(kind: str, length: int, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement: forked on CPU (own peak RSS, killed past the budget), in-process on CUDA."""
    if args.device.startswith("cuda"):
        import torch

        try:
            return measure(kind, length, args)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {"error": "oom"}
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(kind, length, args, child))
    proc.start()
    result = parent.recv() if parent.poll(args.budget) else {"error": "budget"}
    proc.join(1) if result.get("error") != "budget" else None
    if proc.is_alive():
        proc.kill()
        proc.join()
    if proc.exitcode not in (0, None) and "error" not in result:
        result = {"error": f"exit {proc.exitcode}"}
    if proc.exitcode == -9 and result.get("error") == "budget":
        result = {"error": "budget"}
    return result


def fit_exponent(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(k, log a) of value = a·length^k, least squares in log-log; None with fewer than two points."""
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return k, my - k * mx


def crossover(a: dict[int, float], b: dict[int, float]) -> tuple[float | None, str]:
    """Where ``a`` (Mamba) becomes cheaper than ``b``: measured/interpolated, extrapolated, or none."""
    common = sorted(set(a) & set(b))
    for prev, cur in zip(common, common[1:], strict=False):
        if a[prev] >= b[prev] and a[cur] < b[cur]:
            d0, d1 = math.log(a[prev] / b[prev]), math.log(a[cur] / b[cur])
            t = d0 / (d0 - d1)
            return math.exp(math.log(prev) + t * (math.log(cur) - math.log(prev))), "interpolated"
    if common and a[common[0]] < b[common[0]]:
        return float(common[0]), f"cheaper from the first length measured ({common[0]})"
    fa, fb = fit_exponent(sorted(a.items())[-TAIL:]), fit_exponent(sorted(b.items())[-TAIL:])
    if fa and fb and fb[0] > fa[0]:
        length = math.exp((fa[1] - fb[1]) / (fb[0] - fa[0]))
        if length > 64 * common[-1]:
            return (
                None,
                f"none within 64x the longest length measured (fits over the {TAIL} longest: ^{fa[0]:.2f} vs ^{fb[0]:.2f})",
            )
        return length, f"extrapolated from the fits over the {TAIL} longest lengths"
    return None, "no crossover: the Transformer's cost does not grow faster"


def bench(args: argparse.Namespace, kinds: tuple[str, ...]) -> dict[str, Any]:
    results: dict[str, dict[int, dict[str, Any]]] = {k: {} for k in kinds}
    stopped: dict[str, str] = {}
    for length in args.lengths:
        for kind in kinds:
            if kind in stopped:
                results[kind][length] = {"error": f"skipped ({stopped[kind]} at a shorter length)"}
                continue
            r = run_one(kind, length, args)
            results[kind][length] = r
            if "error" in r:
                stopped[kind] = r["error"]
            shown = f"{r['seconds']:.3f} s/step, {r['peak_mib']:.0f} MiB" if "error" not in r else r["error"]
            print(f"  {kind:>7} @ {length:>5} tokens: {shown}", file=sys.stderr, flush=True)
    return {k: {str(n): v for n, v in rows.items()} for k, rows in results.items()}


def summarize(results: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    def series(kind: str, key: str) -> dict[int, float]:
        return {int(n): r[key] for n, r in results[kind].items() if "error" not in r and r[key] > 0}

    out: dict[str, Any] = {"exponents": {}, "crossover": {}}
    for kind in kinds:
        out["exponents"][kind] = {}
        for key, name in (("seconds", "time"), ("peak_mib", "memory")):
            points = sorted(series(kind, key).items())
            every, tail = fit_exponent(points), fit_exponent(points[-TAIL:])
            out["exponents"][kind][name] = round(every[0], 2) if every else None
            out["exponents"][kind][f"{name}_longest"] = round(tail[0], 2) if tail else None
    for other in kinds[1:]:
        for key in ("seconds", "peak_mib"):
            length, how = crossover(series("mamba", key), series(other, key))
            out["crossover"][f"mamba_vs_{other}_{'time' if key == 'seconds' else 'memory'}"] = {
                "length": round(length) if length else None, "how": how}  # fmt: skip
    return out


def table(results: dict[str, Any], kinds: tuple[str, ...], lengths: list[int]) -> str:
    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        return format(r[key], fmt) if "error" not in r else r["error"].split(" ")[0]

    head = ["tokens"] + [f"{k} s/step" for k in kinds] + [f"mamba/{k} time" for k in kinds[1:]]
    head += [f"{k} MiB" for k in kinds] + [f"mamba/{k} mem" for k in kinds[1:]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in lengths:
        rs = {k: results[k][str(n)] for k in kinds}
        line = [str(n)] + [cell(rs[k], "seconds", ".3f") for k in kinds]
        for k in kinds[1:]:
            ok = "error" not in rs["mamba"] and "error" not in rs[k]
            line.append(f"{rs['mamba']['seconds'] / rs[k]['seconds']:.2f}" if ok else "—")
        line += [cell(rs[k], "peak_mib", ".0f") for k in kinds]
        for k in kinds[1:]:
            ok = "error" not in rs["mamba"] and "error" not in rs[k] and rs[k]["peak_mib"] > 0
            line.append(f"{rs['mamba']['peak_mib'] / rs[k]['peak_mib']:.2f}" if ok else "—")
        rows.append("| " + " | ".join(line) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--budget", type=float, default=45.0, help="seconds one measurement may take (CPU)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--bigbird", action="store_true", help="also CEHR-BERT with BigBird block-sparse attention"
    )
    parser.add_argument(
        "--mamba-path",
        choices=("mambapy", "loop"),
        default="mambapy",
        help="the PyTorch path without the CUDA kernels: mambapy's parallel scan or transformers' loop",
    )
    parser.add_argument(
        "--attn",
        choices=("sdpa", "eager"),
        default="sdpa",
        help="BERT attention: sdpa (fused, what runs by default) or eager (materialises length² scores)",
    )
    parser.add_argument("--bf16", action="store_true", help="CUDA: autocast to bfloat16")
    parser.add_argument(
        "--no-kernels", action="store_true", help="hide mamba-ssm/causal-conv1d (the reference path)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.no_kernels:
        _block_kernels()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    torch.set_num_threads(args.threads)
    kinds = ("mamba", "bert", "bigbird") if args.bigbird else ("mamba", "bert")
    params = {
        k: sum(
            p.numel() for p in build(k, argparse.Namespace(**{**vars(args), "lengths": [256]})).parameters()
        )
        for k in kinds
    }
    print(f"device {args.device}, batch {args.batch}, width {args.hidden}, depth {args.layers}, bert attention {args.attn}, parameters "
          + ", ".join(f"{k} {n:,}" for k, n in params.items()) + ", mamba path: "
          + ("fused kernels if importable" if args.device.startswith("cuda") and not args.no_kernels else args.mamba_path),
          flush=True)  # fmt: skip
    started = time.perf_counter()
    results = bench(args, kinds)
    summary = summarize(results, kinds)
    runs = {"kernels" if args.device.startswith("cuda") and not args.no_kernels else "reference": results}
    if args.device.startswith("cuda") and not args.no_kernels and not os.environ.get("BENCH_CHILD"):
        import subprocess

        out = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_mamba_nokernels.json"
        cmd = [sys.executable, __file__, *(argv or sys.argv[1:]), "--no-kernels", "--json", str(out)]
        subprocess.run(cmd, check=False, env={**os.environ, "BENCH_CHILD": "1"})
        if out.is_file():
            runs["reference"] = json.loads(out.read_text())["runs"]["reference"]
    print(table(results, kinds, args.lengths))
    for kind, exp in summary["exponents"].items():
        print(
            f"{kind}: time ∝ length^{exp['time']} (longest {TAIL}: ^{exp['time_longest']}), "
            f"memory ∝ length^{exp['memory']} (longest {TAIL}: ^{exp['memory_longest']})"
        )
    for name, c in summary["crossover"].items():
        print(f"crossover {name}: {c['length'] if c['length'] else '—'} tokens ({c['how']})")
    if "reference" in runs and "kernels" in runs:
        for n in args.lengths:
            k, r = runs["kernels"]["mamba"][str(n)], runs["reference"]["mamba"][str(n)]
            if "error" not in k and "error" not in r:
                print(f"mamba kernels vs reference @ {n}: {r['seconds'] / k['seconds']:.1f}x faster")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"parameters": params, "args": {k: str(v) for k, v in vars(args).items()},
                                         "runs": runs, "summary": summary}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
