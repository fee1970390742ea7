"""The distributed engine under the loop: ``accelerate`` (one process, DDP under ``accelerate launch`` or
``torchrun``, FSDP when ``distributed.fsdp``), mixed precision on CUDA, LoRA wrapping, and the signals
that stop a run at a step boundary with a checkpoint (SIGTERM from a scheduler or an evicted pod, SIGINT).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from ehrdebug.errors import UserError


class TrainingInterrupted(SystemExit):
    """Raised after the interrupted run saved its checkpoint: the process exits with 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum).name


def mixed_precision(config: dict[str, Any]) -> str:
    """accelerate's ``mixed_precision`` for the config: bf16/fp16 autocast on CUDA only, fp32 elsewhere."""
    import torch

    cuda = torch.cuda.is_available() and config["device"] in ("auto", "cuda")
    if not cuda or config["precision"] == "fp32":
        return "no"
    if config["precision"] in ("bf16", "fp16"):
        return config["precision"]
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(config: dict[str, Any]) -> Any:
    """An ``Accelerator`` for this config (launchers set the process group; a plain run is one process)."""
    from accelerate import Accelerator

    plugin = None
    if config["distributed"]["fsdp"]:
        import functools

        from accelerate import FullyShardedDataParallelPlugin
        from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

        policy = functools.partial(size_based_auto_wrap_policy, min_num_params=int(config["distributed"]["fsdp_min_params"]))
        plugin = FullyShardedDataParallelPlugin(auto_wrap_policy=policy, use_orig_params=True)
    return Accelerator(cpu=config["device"] == "cpu", mixed_precision=mixed_precision(config), fsdp_plugin=plugin)


def shard(indices: list[int], accelerator: Any) -> list[int]:
    """This process's part of one global batch (every process gets at least one record: DDP needs it)."""
    n = accelerator.num_processes
    if n == 1:
        return indices
    return indices[accelerator.process_index :: n] or indices[:1]


def apply_lora(model: Any, config: dict[str, Any], task: Any) -> Any:
    """Wrap ``model`` with LoRA adapters; the task's new heads and custom embeddings train in full."""
    from peft import LoraConfig, get_peft_model

    lora = config["lora"]
    saved = sorted(set(lora["modules_to_save"] or []) | set(task.modules_to_save(model)))
    extra = task.lora_options(model, config) if hasattr(task, "lora_options") else {}  # e.g. trainable_token_indices
    try:
        return get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                                target_modules=list(lora["target_modules"]), modules_to_save=saved or None,
                                                **extra))  # fmt: skip
    except ValueError as exc:  # peft's "no modules were targeted" and its other refusals of a LoRA config
        raise UserError(f"use_lora: {_first_line(exc)} (lora.target_modules={list(lora['target_modules'])})") from exc


def build(task: Any, config: dict[str, Any], checkpoint: Any) -> Any:
    """``task.build`` with a model config the library refuses (``hidden_size`` not a multiple of the heads,
    …) as one line naming the recipe: a value the schema's per-key ranges cannot see, before anything is written."""
    try:
        return task.build(config, checkpoint)
    except ValueError as exc:
        raise UserError(f"cannot build the {config['recipe']} model from this config: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def trainable_share(model: Any) -> dict[str, Any]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "share": round(trainable / max(total, 1), 6)}


class Interrupts:
    """SIGTERM/SIGINT handlers that only raise a flag; the loop checks it at each step boundary.

    Installed only in the main thread (signal handlers cannot be set elsewhere); the previous handlers
    come back on exit. Under several processes the flag is agreed on (max over ranks) so all stop together.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signum = signum

    def requested(self, accelerator: Any) -> int | None:
        if accelerator.num_processes > 1:
            import torch

            flag = torch.tensor([self.signum or 0], device=accelerator.device)
            self.signum = int(accelerator.reduce(flag, reduction="max").item()) or None
        return self.signum


def check_resume_engine(config: dict[str, Any], resuming: bool) -> None:
    if resuming and config["distributed"]["fsdp"]:
        raise UserError("resume=true with distributed.fsdp is not supported yet (optimizer state is sharded)")
