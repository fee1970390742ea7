"""Where a run was trained: package versions, device, host, git commit. Cheap and never fails."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from typing import Any

PACKAGES = ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "mamba-ssm", "causal-conv1d", "bitsandbytes", "ehrdebug")


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_info() -> dict[str, Any]:
    """Describe the accelerator only if torch is already imported (never import it just for this)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {"device": "unknown"}
    info: dict[str, Any] = {"device": "cpu", "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info.update(device="cuda", gpu=torch.cuda.get_device_name(0), gpus=torch.cuda.device_count())
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["device"] = "mps"
    return info


def git_commit(path: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path or os.getcwd(), capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "packages": package_versions(),
        **device_info(),
        "git_commit": git_commit(),
    }


def world_rank() -> int:
    """Global rank under torchrun/accelerate/deepspeed launchers; 0 when not distributed."""
    for key in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        value = os.environ.get(key)
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return 0
