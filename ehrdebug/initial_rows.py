"""The embedding rows a run added beyond its base vocabulary, as they were before the first step.

A training run writes them once (``artifacts/initial_rows.safetensors``); the doctor reads them back as the
reference that tells how the new rows were initialised and whether they moved. Judged on trained weights alone,
rows that started at the pretrained mean and then learned look no different from random ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FILE = Path("artifacts") / "initial_rows.safetensors"


def save_initial_rows(run_dir: str | os.PathLike[str], model: Any, base_vocab_size: int | None) -> Path | None:
    """Write the input (and untied output) embedding rows from ``base_vocab_size`` on; None when none were added."""
    from safetensors.torch import save_file

    emb = model.get_input_embeddings().weight
    if not base_vocab_size or base_vocab_size >= emb.shape[0]:
        return None
    tensors = {"input": emb[base_vocab_size:].detach().float().cpu().contiguous()}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out_w = getattr(out, "weight", None)
    if out_w is not None and out_w.data_ptr() != emb.data_ptr() and out_w.shape[0] == emb.shape[0]:
        tensors["output"] = out_w[base_vocab_size:].detach().float().cpu().contiguous()
    path = Path(run_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"base_vocab_size": str(base_vocab_size)})
    return path


def read_initial_rows(run_dir: str | os.PathLike[str]) -> tuple[int, dict[str, Any]] | None:
    """``(base_vocab_size, {"input": rows, "output": rows?})`` a run recorded, or None."""
    from safetensors import safe_open

    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as fh:
        base = int((fh.metadata() or {}).get("base_vocab_size", 0))
        return base, {key: fh.get_tensor(key) for key in fh.keys()}
