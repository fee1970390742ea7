"""runtime.mamba_fast_path: is a Mamba model on CUDA running the slow reference path? (seed 004)

Seed 004's Mamba epoch took 16,636 s against BERT's 903 s. transformers runs Mamba/Mamba2 with the fused
mamba-ssm / causal-conv1d kernels when they import, and otherwise falls back to a sequential PyTorch
scan ("falling back to its reference PyTorch implementation"). Facts are gathered by one function
(device, packages, what transformers resolved each kernel function to) and judged by another, so the
judgement is testable on a CUDA + missing-kernels fact set without a GPU.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "runtime.mamba_fast_path"
KERNEL_PACKAGES = ("mamba_ssm", "causal_conv1d")


@dataclass
class MambaRuntimeFacts:
    is_mamba: bool
    model_type: str = ""
    device: str = "cpu"
    dtype: str = ""
    training: bool = False
    packages: dict[str, bool] = field(default_factory=dict)  # importable on this machine
    kernel_functions: dict[str, bool] = field(default_factory=dict)  # transformers resolved it to the package kernel
    transformers_fast_path: bool | None = None  # v4's is_fast_path_available, when the module has it
    hub_kernels: bool = False  # the `kernels` package can supply them from the hub
    forward_seconds: float | None = None
    reference_seconds: float | None = None


def _kernel_resolution(module: Any) -> dict[str, bool]:
    """transformers v5 wraps each kernel function; its closure says whether the package implementation won."""
    out: dict[str, bool] = {}
    for name, obj in vars(module).items():
        closure = getattr(obj, "__closure__", None)
        code = getattr(obj, "__code__", None)
        if not closure or code is None or "is_new_implementation" not in code.co_freevars:
            continue
        cells = dict(zip(code.co_freevars, (c.cell_contents for c in closure), strict=True))
        out[f"{cells.get('package', '?')}.{cells.get('func_name', name)}"] = bool(cells["is_new_implementation"])
    return out


def gather_mamba_facts(model: Any) -> MambaRuntimeFacts:
    """Facts only: model type, device, kernels importable and what transformers actually resolved."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    if "mamba" not in model_type:
        return MambaRuntimeFacts(is_mamba=False, model_type=model_type)
    param = next(model.parameters())
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper
    module = sys.modules.get(type(inner).__module__)
    facts = MambaRuntimeFacts(
        is_mamba=True, model_type=model_type, device=str(param.device), dtype=str(param.dtype).replace("torch.", ""),
        training=bool(model.training),
        packages={p: importlib.util.find_spec(p) is not None for p in KERNEL_PACKAGES + ("mambapy",)},
        hub_kernels=importlib.util.find_spec("kernels") is not None,
    )
    if module is not None:
        facts.kernel_functions = _kernel_resolution(module)
        fast = getattr(module, "is_fast_path_available", None)
        facts.transformers_fast_path = bool(fast) if fast is not None else None
    return facts


def judge_mamba_facts(facts: MambaRuntimeFacts) -> list[Finding]:
    evidence = asdict(facts)
    if not facts.is_mamba:
        return [Finding(PROBE, Severity.OK, f"not a Mamba model ({facts.model_type or 'unknown'})", evidence)]
    resolved = facts.kernel_functions
    if facts.transformers_fast_path is not None:
        fast = facts.transformers_fast_path
    elif resolved:
        fast = all(resolved.values())
    else:  # no wrapper found (another transformers layout): fall back on what is importable
        fast = all(facts.packages.get(p, False) for p in KERNEL_PACKAGES)
    missing_pkgs = [p for p in KERNEL_PACKAGES if not facts.packages.get(p)]
    slow_funcs = sorted(k for k, v in resolved.items() if not v)
    timing = ""
    if facts.forward_seconds is not None and facts.reference_seconds:
        evidence["slowdown_vs_transformer"] = round(facts.forward_seconds / facts.reference_seconds, 2)
        timing = f"; forward {evidence['slowdown_vs_transformer']}x an equal-size transformer"
    if not facts.device.startswith("cuda"):
        return [Finding(PROBE, Severity.INFO,
                        f"{facts.model_type} on {facts.device}: the pure-PyTorch scan is the expected fallback "
                        f"(the fused kernels are CUDA-only){timing}",
                        evidence, [], [], rule="the fused mamba-ssm/causal-conv1d kernels only exist for CUDA")]
    if fast:
        return [Finding(PROBE, Severity.OK, f"{facts.model_type} on {facts.device} uses the fused kernels{timing}", evidence,
                        rule="fail when a CUDA Mamba model resolves its kernels to the PyTorch reference path")]
    return [Finding(
        PROBE, Severity.FAIL,
        f"{facts.model_type} on {facts.device} runs the slow reference path: {', '.join(missing_pkgs) or 'kernels'} "
        f"not usable ({len(slow_funcs)} kernel functions fall back to PyTorch){timing}",
        evidence, slow_funcs[:8], ["install-cuda-kernels"],
        rule="fail when a CUDA Mamba model resolves its kernels to the PyTorch reference path "
             "(seed 004: 16,636 s vs 903 s per epoch)",
    )]


def time_forward(model: Any, seq_len: int = 256, batch: int = 2, repeats: int = 2) -> float:
    """Seconds per forward pass on random ids (after one warm-up)."""
    import torch

    param = next(model.parameters())
    ids = torch.randint(0, int(model.config.vocab_size), (batch, seq_len), device=param.device)
    with torch.no_grad():
        model(input_ids=ids)
        if param.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids)
        if param.device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def reference_transformer(model: Any) -> Any:
    """A Llama of the same hidden size, depth and vocabulary, on the same device (for timing only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = model.config
    heads = max(1, c.hidden_size // 64) if c.hidden_size % 64 == 0 else 1
    cfg = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=4 * c.hidden_size,
                      num_hidden_layers=c.num_hidden_layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=4096)
    param = next(model.parameters())
    return LlamaForCausalLM(cfg).to(device=param.device, dtype=param.dtype).eval()


def mamba_fast_path(model: Any, *, time_it: bool = False, seq_len: int = 256) -> list[Finding]:
    facts = gather_mamba_facts(model)
    if facts.is_mamba and time_it:
        facts.forward_seconds = time_forward(model, seq_len)
        facts.reference_seconds = time_forward(reference_transformer(model), seq_len)
    return judge_mamba_facts(facts)
