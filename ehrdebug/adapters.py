"""PEFT adapters: which base an adapter applies to, and applying it there.

An adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``) names its base in
``base_model_name_or_path``: a local directory (used directly, also relative to the adapter) or a hub id.
ehrdebug never downloads, so a hub id is used only when the local Hugging Face cache holds it
(``HF_HUB_CACHE``; ``snapshot_download(..., local_files_only=True)``); otherwise the one-line error says
exactly what to pass (``--base DIR_OR_HUB_ID``). The base is resized to the adapter's tokenizer before the
adapter is applied: an adapter trained with added tokens (code delimiters) has more embedding rows than
its base, and a base too small for them cannot take the saved rows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

CONFIG = "adapter_config.json"
PASS_BASE = (
    "pass --base DIR_OR_HUB_ID (a local copy of the base model, or a hub id already in the local HF cache)"
)


def is_adapter_dir(path: Path) -> bool:
    """A PEFT adapter without a full model beside it (a full ``config.json`` model loads as itself)."""
    return (path / CONFIG).is_file() and not (path / "config.json").is_file()


def adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def cached_hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The local snapshot of hub repo ``repo_id`` in the HF cache (never downloads); None when absent."""
    if not _hub_like(repo_id):
        return None
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        path = snapshot_download(repo_id, revision=revision, local_files_only=True,
                                 cache_dir=os.environ.get("HF_HUB_CACHE") or None)  # fmt: skip
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    path = Path(path)
    return path if (path / "config.json").is_file() else None


def _hub_like(name: str) -> bool:
    """``meta-llama/Llama-2-7b-hf`` or ``gpt2``: no path separators beyond one ``org/`` and no leading dot/slash."""
    return bool(name) and not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "\\" not in name


def resolve_base(adapter_dir: str | os.PathLike[str], base: str | None = None) -> Path:
    """The local directory of the adapter's base: ``base`` when given, else the one adapter_config.json names."""
    adapter_dir = Path(adapter_dir)
    named = str(adapter_config(adapter_dir).get("base_model_name_or_path") or "")
    wanted = base or named
    source = "--base" if base else f"{adapter_dir / CONFIG} base_model_name_or_path"
    if not wanted:
        raise UserError(f"{adapter_dir / CONFIG} names no base_model_name_or_path; {PASS_BASE}")
    for candidate in (Path(os.path.expanduser(wanted)), adapter_dir / wanted):
        if candidate.is_dir():
            if not (candidate / "config.json").is_file():
                raise UserError(f"{source} {wanted!r} is a directory without config.json; {PASS_BASE}")
            return candidate
    revision = None if base else adapter_config(adapter_dir).get("revision")
    cached = cached_hub_snapshot(wanted, revision)
    if cached is not None:
        return cached
    where = (
        "not a local directory and not in the local Hugging Face cache"
        if _hub_like(wanted)
        else "not a local directory"
    )
    raise UserError(
        f"the adapter's base {wanted!r} ({source}) is {where} (ehrdebug never downloads); {PASS_BASE}"
    )


def tokenizer_dir(adapter_dir: Path, base_dir: Path, has_tokenizer: Any) -> Path | None:
    """Where the adapter's tokenizer is: beside it, in the checkpoint above it (ehrdebug's step-N/adapter), else the base's."""
    for candidate in (adapter_dir, adapter_dir.parent, base_dir):
        if has_tokenizer(candidate):
            return candidate
    return None


def resize_for_tokenizer(model: Any, tokenizer: Any) -> int:
    """Give the base one embedding row per tokenizer entry; new rows start at the mean of the base rows (as
    ehrdebug's recipes initialise added tokens). Returns how many rows were added."""
    import torch

    if tokenizer is None:
        return 0
    rows = int(model.get_input_embeddings().weight.shape[0])
    wanted = len(tokenizer)
    if wanted <= rows:
        return 0
    model.resize_token_embeddings(wanted, mean_resizing=False)
    with torch.no_grad():
        for layer in {
            id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
        }.values():
            layer.weight[rows:] = layer.weight[:rows].mean(dim=0)
    return wanted - rows


def apply_adapter(model: Any, adapter_dir: Path, tokenizer: Any, trainable: bool = True) -> Any:
    """The base ``model`` with the adapter of ``adapter_dir`` applied (``PeftModel``), resized to ``tokenizer`` first."""
    from peft import PeftModel

    resize_for_tokenizer(model, tokenizer)
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as exc:  # shape mismatch: the adapter is not for this base
        first = str(exc).strip().splitlines()[0][:300]
        raise UserError(
            f"cannot apply the adapter in {adapter_dir} to its base: {first}; {PASS_BASE}"
        ) from exc


def require_base(path: str | os.PathLike[str], base: str | None) -> Path | None:
    """For ``ehrdebug doctor PATH [--base ...]``: the adapter's base, resolved before minutes of probing (a
    one-line UserError saying what to pass when it cannot be found); None when PATH is no adapter."""
    target = Path(path)
    if not target.is_dir() or not is_adapter_dir(target):
        if base:
            raise UserError(
                f"--base applies to a PEFT adapter directory (adapter_config.json); {target} is not one"
            )
        return None
    return resolve_base(target, base)
