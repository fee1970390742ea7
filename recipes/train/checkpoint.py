"""Checkpoint state the loop writes and reads back, none of it unpickled into code.

Weights are safetensors (``RunLogger.save_checkpoint``); optimizer and scheduler state are tensors and
plain containers, read with ``torch.load(weights_only=True)`` so a crafted ``optimizer.pt`` cannot run
anything; the loop's counters and the random-number state (torch, CUDA, numpy, python) are JSON in
``trainer_state.json``. Restoring the RNG state with the data order (a pure function of seed and epoch)
makes a resumed run's next losses those of the run that was never interrupted.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
ADAPTER_DIR = "adapter"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The run's highest-step checkpoint (the core's one lookup, ``ehrdebug.loading``)."""
    from ehrdebug.loading import latest_checkpoint as core_latest

    found = core_latest(run_dir)
    return found if found is not None and (found / STATE_FILE).is_file() else None


def step_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    steps = [(int(p.name.split("-")[1]), p) for p in (run_dir / "checkpoints").glob("step-*") if p.name.split("-")[1].isdigit()]
    return sorted(steps)


def prune(run_dir: Path, keep: int, best_step: int | None) -> None:
    """Keep the ``keep`` newest step-N checkpoints (0 = all) and the best one."""
    for step, path in step_dirs(run_dir)[:-keep] if keep else []:
        if step != best_step:
            shutil.rmtree(path, ignore_errors=True)


# -- random-number state -------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every generator the training step draws from, as JSON (lists of ints)."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# -- reading a checkpoint back -------------------------------------------------------------------
def read_state(checkpoint: Path) -> dict[str, Any]:
    """The loop state saved with ``checkpoint``; a corrupt or incomplete file is a one-line UserError."""
    path = checkpoint / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot resume from {checkpoint}: {path.name} is unreadable ({exc})") from None
    loop = data.get("loop") if isinstance(data, dict) else None
    if not isinstance(loop, dict) or not isinstance(loop.get("step"), int) or not isinstance(loop.get("epoch"), int):
        raise UserError(f"cannot resume from {checkpoint}: {path.name} holds no loop state (step, epoch)")
    check_files(checkpoint)
    data["loop"] = _floats(loop)
    return data


def _floats(value: Any) -> Any:
    """The writer stores a NaN/inf (a diverged eval loss) as the string "nan"/"inf": back to floats."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return float(value) if isinstance(value, str) and value in ("nan", "inf", "-inf") else value


def check_files(checkpoint: Path) -> None:
    """Every JSON file, the tokenizer and every safetensors header of ``checkpoint`` readable before a model
    is built from it: a corrupt file is one line naming it, not a library's traceback mid-build."""
    from safetensors import SafetensorError, safe_open
    from tokenizers import Tokenizer

    for path in sorted([*checkpoint.glob("*.json"), *checkpoint.glob(f"{ADAPTER_DIR}/*.json")]):
        try:
            json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
            if path.name == "tokenizer.json":
                Tokenizer.from_file(str(path))
        except Exception as exc:  # OSError, UnicodeDecodeError, JSONDecodeError, the tokenizers library's own
            raise _unreadable(checkpoint, path, exc) from None
    for path in sorted([*checkpoint.glob("*.safetensors"), *checkpoint.glob(f"{ADAPTER_DIR}/*.safetensors")]):
        try:
            with safe_open(str(path), framework="pt") as fh:
                fh.keys()
        except (SafetensorError, OSError, ValueError) as exc:
            raise _unreadable(checkpoint, path, exc) from None


def _unreadable(checkpoint: Path, path: Path, exc: Exception) -> UserError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"cannot resume from {checkpoint}: {path.name} is unreadable ({first[:160]})")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid value in a trainer state")


def load_optimizer(checkpoint: Path, optimizer: Any, scheduler: Any) -> None:
    """Optimizer and scheduler state with ``weights_only=True``: tensors and containers, never code."""
    import pickle
    import struct

    import torch

    path = checkpoint / OPTIMIZER_FILE
    if not path.is_file():
        raise UserError(f"cannot resume from {checkpoint}: no {OPTIMIZER_FILE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, ValueError, EOFError, struct.error,
            AttributeError, IndexError) as exc:  # whatever a corrupt or foreign file makes these raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot resume from {path}: not a plain optimizer state ({first[:160]})") from None


def load_weights(model: Any, checkpoint: Path) -> None:
    """The checkpoint's safetensors into ``model``: the adapter for a PEFT model, else the full weights.

    Tied weights (an MLM decoder sharing the code embedding) are saved once; a key missing from the
    file is fine when its tensor shares storage with one that was loaded.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict

        files = sorted((checkpoint / ADAPTER_DIR).glob("*.safetensors"))
        if not files:
            raise UserError(f"checkpoint has no adapter weights: {checkpoint / ADAPTER_DIR}")
        set_peft_model_state_dict(model, _read(files, load_file, SafetensorError, checkpoint))
        return
    files = sorted(checkpoint.glob("*.safetensors"))
    if not files:
        raise UserError(f"checkpoint has no safetensors weights: {checkpoint}")
    state = _read(files, load_file, SafetensorError, checkpoint)
    missing, unexpected = model.load_state_dict(state, strict=False)
    own = model.state_dict()
    loaded = {own[k].data_ptr() for k in state if k in own}
    real_missing = [k for k in missing if own[k].data_ptr() not in loaded]
    if real_missing or unexpected:
        raise UserError(f"checkpoint {checkpoint} does not match the model ({len(real_missing)} missing, {len(unexpected)} unexpected)")


def _read(files: list[Path], load_file: Any, error: Any, checkpoint: Path) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (error, OSError, ValueError) as exc:
            raise UserError(f"cannot read weights {f}: {str(exc).splitlines()[0][:160]}") from None
    return state


def resolve_init(path: str | Path) -> Path:
    """``init_from``: a checkpoint directory, or a run whose final (best, else latest) checkpoint is used."""
    from ehrdebug.loading import final_checkpoint, is_model_dir

    p = Path(path)
    if is_model_dir(p):
        return p
    found = final_checkpoint(p) if p.is_dir() else None
    if found is None:
        raise UserError(f"init_from={path}: not a checkpoint or a run with one")
    return found


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
