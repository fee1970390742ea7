"""Device and precision: cuda > mps > cpu, autocast on CUDA only (bf16 where supported, else fp16 + GradScaler)."""

from __future__ import annotations

import contextlib
from typing import Any


def pick_device(preference: str = "auto") -> Any:
    import torch

    if preference not in ("auto", "cuda", "mps", "cpu"):
        raise ValueError(f"unknown device {preference!r}")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if preference in ("auto", "mps") and mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: Any, precision: str = "auto") -> Any:
    """The autocast dtype for this device, or None for plain fp32 (CPU, MPS, or precision=fp32)."""
    import torch

    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: Any, dtype: Any) -> Any:
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(dtype: Any) -> Any:
    """A GradScaler for fp16 autocast (bf16 and fp32 need none)."""
    import torch

    return torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
