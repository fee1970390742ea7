"""runtime.mamba_fast_path: is a Mamba model on CUDA running the slow reference path, and what does it cost? (seed 004)

Seed 004's Mamba epoch took 16,636 s against BERT's 903 s. transformers runs Mamba/Mamba2 with the fused
mamba-ssm / causal-conv1d kernels when they import, and otherwise falls back to a sequential PyTorch
scan ("falling back to its reference PyTorch implementation"). Facts are gathered by one function
(device, packages, what transformers resolved each kernel function to, measured step times) and judged by
another, so the judgement is testable on a CUDA + missing-kernels fact set without a GPU.

The probe takes a model, a config or a checkpoint directory, so it runs at training start (before the first
epoch, on the run's device and sequence length) and in the doctor. With ``time_it`` it times a few real
training steps (forward + backward) of the model at the run's sequence length, and the same steps of a
transformer of matched parameter count, on the same device; gradients, RNG state and train/eval mode
are restored afterwards. Where the kernels are missing on CUDA it states the expected slowdown of the
reference path (``EXPECTED_KERNEL_SPEEDUP``) beside the measured figures, names the cause and the fix.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "runtime.mamba_fast_path"
KERNEL_PACKAGES = ("mamba_ssm", "causal_conv1d")
#: published speed of the fused selective scan over a PyTorch scan (Gu & Dao 2023, Mamba, §3.3: "20-40x faster")
#: and seed 004's observed Mamba/Transformer epoch ratio without the kernels; stated, not measured here
EXPECTED_KERNEL_SPEEDUP = (20.0, 40.0)
SEED_004_EPOCH_RATIO = round(16635.6 / 902.66, 1)


@dataclass
class MambaRuntimeFacts:
    is_mamba: bool
    model_type: str = ""
    device: str = "cpu"
    dtype: str = ""
    training: bool = False
    packages: dict[str, bool] = field(default_factory=dict)  # importable on this machine
    kernel_functions: dict[str, bool] = field(
        default_factory=dict
    )  # transformers resolved it to the package kernel
    transformers_fast_path: bool | None = None  # v4's is_fast_path_available, when the module has it
    hub_kernels: bool = False  # the `kernels` package can supply them from the hub
    forward_seconds: float | None = None
    reference_seconds: float | None = None
    step_seconds: float | None = None  # measured forward+backward of this model
    reference_step_seconds: float | None = None  # the same for a parameter-matched transformer
    seq_len: int | None = None
    batch_size: int | None = None
    parameters: int | None = None
    reference_parameters: int | None = None
    steps_per_epoch: int | None = None
    use_mambapy: bool | None = None  # Mamba (v1) config: use mambapy's parallel scan off the kernel path


def _kernel_resolution(module: Any) -> dict[str, bool]:
    """transformers v5 wraps each kernel function; its closure says whether the package implementation won."""
    out: dict[str, bool] = {}
    for name, obj in vars(module).items():
        closure = getattr(obj, "__closure__", None)
        code = getattr(obj, "__code__", None)
        if not closure or code is None or "is_new_implementation" not in code.co_freevars:
            continue
        cells = dict(zip(code.co_freevars, (c.cell_contents for c in closure), strict=True))
        out[f"{cells.get('package', '?')}.{cells.get('func_name', name)}"] = bool(
            cells["is_new_implementation"]
        )
    return out


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _device_of(model: Any) -> str:
    return str(next(model.parameters()).device)


def _mamba_module(model: Any) -> Any:
    """The transformers modelling module whose mixers run the scan: the model's own, or its backbone's
    (EHRMamba wraps transformers' MambaModel; a peft wrapper wraps either)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = [type(inner).__module__] + [
        type(m).__module__ for m in inner.modules() if type(m).__name__.endswith("Mixer")
    ]
    for name in names:
        module = sys.modules.get(name)
        if module is not None and name.startswith("transformers.models.mamba"):
            return module
    return sys.modules.get(names[0])


def _is_mamba2(config: Any) -> bool:
    return "mamba2" in str(getattr(config, "model_type", "")) or getattr(config, "backbone", "") == "mamba2"


def gather_mamba_facts(model: Any) -> MambaRuntimeFacts:
    """Facts only: model type, device, kernels importable and what transformers actually resolved."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    if "mamba" not in model_type:
        return MambaRuntimeFacts(is_mamba=False, model_type=model_type)
    param = next(model.parameters())
    facts = MambaRuntimeFacts(
        is_mamba=True, model_type=model_type, device=_device_of(model), dtype=str(param.dtype).replace("torch.", ""),
        training=bool(model.training),
        packages={p: _importable(p) for p in KERNEL_PACKAGES + ("mambapy",)},
        hub_kernels=_importable("kernels"),
        parameters=sum(p.numel() for p in model.parameters()),
        use_mambapy=None if _is_mamba2(model.config) else getattr(model.config, "use_mambapy", False),
    )  # fmt: skip
    module = _mamba_module(model)
    if module is not None:
        facts.kernel_functions = _kernel_resolution(module)
        fast = getattr(module, "is_fast_path_available", None)
        facts.transformers_fast_path = bool(fast) if fast is not None else None
    return facts


def _cost_text(facts: MambaRuntimeFacts, evidence: dict[str, Any]) -> str:
    parts = []
    if facts.step_seconds is not None:
        parts.append(
            f"measured {facts.step_seconds:.3g} s per training step (batch {facts.batch_size}, {facts.seq_len} tokens)"
        )
        if facts.reference_step_seconds:
            evidence["step_ratio_vs_transformer"] = round(
                facts.step_seconds / facts.reference_step_seconds, 2
            )
            parts.append(f"{evidence['step_ratio_vs_transformer']}x a parameter-matched transformer's")
        if facts.steps_per_epoch:
            evidence["epoch_seconds_estimate"] = round(facts.step_seconds * facts.steps_per_epoch, 1)
            parts.append(
                f"~{evidence['epoch_seconds_estimate']:g} s per epoch of {facts.steps_per_epoch} steps"
            )
    if facts.forward_seconds is not None and facts.reference_seconds:
        evidence["slowdown_vs_transformer"] = round(facts.forward_seconds / facts.reference_seconds, 2)
        parts.append(f"forward {evidence['slowdown_vs_transformer']}x an equal-size transformer")
    return ("; " + ", ".join(parts)) if parts else ""


def _reference_path(facts: MambaRuntimeFacts) -> str:
    """Which PyTorch path runs without the kernels: mambapy's parallel scan, or transformers' per-token loop."""
    if facts.use_mambapy is None:  # Mamba2: its PyTorch path is a chunked (parallel) scan already
        return "the chunked PyTorch scan"
    if facts.use_mambapy and facts.packages.get("mambapy"):
        return "mambapy's parallel scan"
    return "the per-token PyTorch loop (install mambapy and set use_mambapy=True for a parallel scan)"


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
    cost = _cost_text(facts, evidence)
    evidence["reference_path"] = _reference_path(facts)
    if not facts.device.startswith("cuda"):
        return [Finding(PROBE, Severity.INFO,
                        f"{facts.model_type} on {facts.device}: the pure-PyTorch scan is the expected fallback "
                        f"(the fused kernels are CUDA-only; here: {evidence['reference_path']}){cost}",
                        evidence, [], [], rule="the fused mamba-ssm/causal-conv1d kernels only exist for CUDA")]  # fmt: skip
    if fast:
        return [Finding(PROBE, Severity.OK, f"{facts.model_type} on {facts.device} uses the fused kernels{cost}", evidence,
                        rule="fail when a CUDA Mamba model resolves its kernels to the PyTorch reference path")]  # fmt: skip
    low, high = EXPECTED_KERNEL_SPEEDUP
    evidence["expected_kernel_speedup"] = [low, high]
    evidence["seed_004_epoch_ratio"] = SEED_004_EPOCH_RATIO
    evidence["fix_command"] = "pip install 'ehrdebug[cuda]'  # mamba-ssm, causal-conv1d"
    return [Finding(
        PROBE, Severity.FAIL,
        f"{facts.model_type} on {facts.device} runs the slow reference path: {', '.join(missing_pkgs) or 'kernels'} "
        f"not usable ({len(slow_funcs)} kernel functions fall back to PyTorch){cost}; the fused scan is expected "
        f"{low:g}-{high:g}x faster (seed 004: {SEED_004_EPOCH_RATIO}x a Transformer's epoch) — install the cuda extra",
        evidence, slow_funcs[:8], ["install-cuda-kernels"],
        rule="fail when a CUDA Mamba model resolves its kernels to the PyTorch reference path "
             "(seed 004: 16,636 s vs 903 s per epoch)",
    )]  # fmt: skip


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize()


def _random_ids(model: Any, shape: tuple[int, int], device: Any) -> Any:
    """Random ids of ``shape``; a prompted multitask model (``config.task_token_ids``) gets its first task
    token at position 0, as every row it reads starts with one (it refuses rows that do not)."""
    import torch

    ids = torch.randint(0, int(model.config.vocab_size), shape, device=device)
    tokens = getattr(model.config, "task_token_ids", None) or []
    if tokens:
        ids[:, 0] = int(tokens[0])
    return ids


def time_forward(model: Any, seq_len: int = 256, batch: int = 2, repeats: int = 2) -> float:
    """Seconds per forward pass on random ids (after one warm-up)."""
    import torch

    param = next(model.parameters())
    ids = _random_ids(model, (batch, seq_len), param.device)
    with torch.no_grad():
        model(input_ids=ids)
        _sync(param.device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids)
        _sync(param.device)
    return (time.perf_counter() - start) / repeats


def _output_tensor(out: Any) -> Any:
    for name in ("logits", "last_hidden_state"):
        value = getattr(out, name, None)
        if value is not None:
            return value
    return out[0] if isinstance(out, (tuple, list)) else out


def time_train_step(model: Any, seq_len: int, batch: int = 1, steps: int = 2) -> float:
    """Seconds per forward + backward on random ids at ``seq_len`` (after a short warm-up step).

    The model is left as it was: gradients restored, RNG state forked, train/eval mode kept.
    """
    import torch

    param = next(model.parameters())
    saved = {p: p.grad for p in model.parameters()}
    was_training = model.training
    devices = [param.device.index or 0] if param.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            model.train()
            warm = _random_ids(model, (1, min(seq_len, 32)), param.device)  # first-call costs, cheaply
            _output_tensor(
                model(input_ids=warm, attention_mask=torch.ones_like(warm))
            ).float().mean().backward()
            ids = _random_ids(model, (batch, seq_len), param.device)
            mask = torch.ones_like(ids)
            elapsed = []
            for _ in range(steps):
                _sync(param.device)
                start = time.perf_counter()
                _output_tensor(model(input_ids=ids, attention_mask=mask)).float().mean().backward()
                _sync(param.device)
                elapsed.append(time.perf_counter() - start)
    finally:
        for p, g in saved.items():
            p.grad = g
        model.train(was_training)
    return sum(elapsed) / steps


def _block_parameters(model: Any) -> tuple[int, int]:
    """(parameters of one Mamba block, number of blocks) of ``model``."""
    blocks = [m for m in model.modules() if type(m).__name__ in ("MambaBlock", "Mamba2Block")]
    if not blocks:
        return 0, 0
    return sum(p.numel() for p in blocks[0].parameters()), len(blocks)


def reference_transformer(model: Any, match_parameters: bool = False) -> Any:
    """A Llama of the same hidden size, depth and vocabulary on the same device (for timing only);
    ``match_parameters`` sizes its MLP so each layer has as many parameters as one Mamba block."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = model.config
    hidden = int(c.hidden_size)
    heads = max(1, hidden // 64) if hidden % 64 == 0 else 1
    intermediate = 4 * hidden
    block, depth = _block_parameters(model)
    if match_parameters and block:
        intermediate = max(hidden, (block - 4 * hidden * hidden) // (3 * hidden))
    cfg = LlamaConfig(vocab_size=c.vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                      num_hidden_layers=depth or int(c.num_hidden_layers), num_attention_heads=heads,
                      num_key_value_heads=heads, max_position_embeddings=16384)  # fmt: skip
    param = next(model.parameters())
    return LlamaForCausalLM(cfg).to(device=param.device, dtype=param.dtype).eval()


def model_from(
    config: Any = None, checkpoint: str | os.PathLike[str] | None = None, device: str | None = None
) -> Any:
    """A model to probe from a config (random weights: timing only) or a checkpoint directory, on ``device``."""
    import transformers

    import ehrdebug.models as models  # registers EHRMamba/CEHR-BERT with the Auto classes

    if checkpoint is not None:
        model = models.load_pretrained(str(checkpoint)) if _is_ehr_checkpoint(checkpoint) else None
        if model is None:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), local_files_only=True)
    else:
        if isinstance(config, dict):
            config = transformers.AutoConfig.for_model(**config)
        heads = models.HEADS.get(config.model_type, {})
        cls = heads.get("causal_lm") or heads.get("base")
        model = cls(config) if cls is not None else transformers.AutoModelForCausalLM.from_config(config)
    if device:
        model = model.to(device)
    return model


def _is_ehr_checkpoint(path: str | os.PathLike[str]) -> bool:
    import json

    import ehrdebug.models as models

    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
            return json.load(fh).get("model_type") in models.HEADS
    except (OSError, ValueError):
        return False


def mamba_fast_path(
    model: Any = None,
    *,
    config: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | None = None,
    time_it: bool = False,
    seq_len: int = 256,
    batch_size: int = 1,
    steps: int = 2,
    steps_per_epoch: int | None = None,
    forward: bool = True,
) -> list[Finding]:
    """Judge the Mamba execution path of ``model`` (or one built from ``config``/``checkpoint`` on ``device``).

    ``time_it``: measure ``steps`` training steps at ``seq_len`` (the run's max length) of the model and of a
    parameter-matched transformer, and (``forward``) the forward time against an equal-size transformer;
    with ``steps_per_epoch`` the epoch time it implies. Call it before the first epoch.
    """
    if model is None:
        model = model_from(config, checkpoint, device)
    facts = gather_mamba_facts(model)
    if facts.is_mamba and time_it:
        facts.seq_len, facts.batch_size, facts.steps_per_epoch = (
            int(seq_len),
            int(batch_size),
            steps_per_epoch,
        )
        if forward:
            facts.forward_seconds = time_forward(model, seq_len)
            facts.reference_seconds = time_forward(reference_transformer(model), seq_len)
        facts.step_seconds = time_train_step(model, seq_len, batch_size, steps)
        reference = reference_transformer(model, match_parameters=True)
        facts.reference_parameters = sum(p.numel() for p in reference.parameters())
        facts.reference_step_seconds = time_train_step(reference, seq_len, batch_size, steps)
    return judge_mamba_facts(facts)
