"""The one model/checkpoint loader: a local checkpoint, a PEFT adapter or a run's latest checkpoint.

The doctor, the fix-recipes' surgery and the TUI sampler all load through ``load_model`` so a model loads
the same way everywhere: transformers' Auto classes (after importing ``ehrdebug.models`` so the project's own
architectures are registered), the Auto head the checkpoint's ``architectures`` names, a PEFT adapter on its
local base. Pickle-only weights (``pytorch_model.bin``) can run code when unpickled, so they load only when
the caller passes ``allow_pickle=True`` (``--allow-pickle``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
PICKLE_WEIGHTS = ("pytorch_model.bin", "adapter_model.bin", "pytorch_model.bin.index.json")
# Auto heads tried in order; the one whose class the checkpoint's ``architectures`` names wins
AUTO_HEADS = ("AutoModelForSeq2SeqLM", "AutoModelForCausalLM", "AutoModelForMaskedLM",
              "AutoModelForSequenceClassification", "AutoModel")
STEP_PREFIXES = (("checkpoints", "step-"), ("", "checkpoint-"))  # ehrdebug runs, HF output dirs
FALLBACK_NAMES = ("best", "final", "model")


def is_model_dir(path: Path) -> bool:
    """A directory a model loads from: a full model (config.json) or a PEFT adapter (adapter_config.json)."""
    return path.is_dir() and ((path / "config.json").is_file() or (path / "adapter_config.json").is_file())


def has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in TOKENIZER_FILES)


def weight_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file() and f.suffix in (".safetensors", ".bin"))


def latest_checkpoint(run_dir: str | os.PathLike[str], *, model: bool = True) -> Path | None:
    """The highest-step checkpoint of a run: ``checkpoints/step-N`` (ehrdebug), ``checkpoint-N`` (HF), else
    ``best``/``final``/``model``; None when there is none. With ``model`` only directories a model loads from
    count; without, any step directory (one that holds only a tokenizer, for the token inspector)."""
    root = Path(run_dir)
    usable = is_model_dir if model else Path.is_dir
    candidates: list[tuple[int, Path]] = []
    for sub, prefix in STEP_PREFIXES:
        parent = root / sub if sub else root
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            number = child.name[len(prefix):]
            if child.name.startswith(prefix) and number.isdigit() and usable(child):
                candidates.append((int(number), child))
    if candidates:
        return max(candidates)[1]
    return next((root / name for name in FALLBACK_NAMES if usable(root / name)), None)


def final_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a run ends with: the best one its ``artifacts/metrics_summary.json`` records (kept and
    reloaded at the end), else the latest."""
    root = Path(run_dir)
    summary = root / "artifacts" / "metrics_summary.json"
    try:
        best = json.loads(summary.read_text(encoding="utf-8")).get("best_checkpoint") if summary.is_file() else None
    except (OSError, ValueError, AttributeError):
        best = None
    if isinstance(best, str) and is_model_dir(root / best):
        return root / best
    return latest_checkpoint(root)


def _refuse_pickle(path: Path, allow_pickle: bool) -> None:
    if allow_pickle or any(path.glob("*.safetensors")) or any(path.glob("*.safetensors.index.json")):
        return
    pickled = [name for name in PICKLE_WEIGHTS if (path / name).is_file()]
    if pickled:
        raise UserError(f"{path / pickled[0]} holds pickle weights, which can run code when loaded; convert them to "
                        "safetensors, or pass --allow-pickle (allow_pickle=True) if you trust this file")


def adapter_base(model_dir: Path, base: str | None = None) -> Path | None:
    """The local base directory of a PEFT adapter (None for a full model): ``base`` (``--base``) or the one its
    adapter_config.json names, a local dir or a hub id in the local HF cache (``ehrdebug.adapters``)."""
    from ehrdebug.adapters import is_adapter_dir, resolve_base

    return resolve_base(model_dir, base) if is_adapter_dir(model_dir) else None


def model_class(config: Any) -> Any:
    """What loads this checkpoint: the class ``config.architectures`` names when ``ehrdebug.models`` registered it
    (heads no Auto class covers, such as BEHRT's next-visit head), else the Auto head whose mapping holds that
    class (else the first Auto head that maps this config at all): BART -> seq2seq LM, GPT-2 -> causal LM."""
    import transformers

    import ehrdebug.models as models  # registers the project's architectures with the Auto classes

    wanted = (getattr(config, "architectures", None) or [None])[0]
    registered = getattr(models, "ARCHITECTURES", {})
    if wanted in registered:
        return registered[wanted]
    fallback = None
    for name in AUTO_HEADS:
        auto = getattr(transformers, name)
        try:
            cls = auto._model_mapping[type(config)]
        except KeyError:
            continue
        if wanted is None or getattr(cls, "__name__", "") == wanted:
            return auto
        fallback = fallback or auto
    if fallback is None:
        raise UserError(f"no transformers model class is registered for model_type {getattr(config, 'model_type', '?')!r}")
    return fallback


def load_model(model_dir: str | os.PathLike[str], tokenizer_dir: str | os.PathLike[str] | None = None, *,
               allow_pickle: bool = False, trainable_adapter: bool = True, base: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a local checkpoint or PEFT adapter, eval mode, CPU; tokenizer None when the
    checkpoint (or the adapter's base) has no tokenizer files and none is given.

    ``trainable_adapter`` loads an adapter as it would train (its trainable parameters are what
    ``model.trainable`` judges); pickle-only weights raise a UserError unless ``allow_pickle``.
    """
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # reports are the output; no loading bars on stderr
    path = Path(os.path.expanduser(os.fspath(model_dir)))
    if not is_model_dir(path):
        raise UserError(f"{path} is not a model checkpoint (no config.json or adapter_config.json)")
    base = adapter_base(path, base)  # ``base``: the --base override of what adapter_config.json names
    weights_dir = base or path
    _refuse_pickle(path, allow_pickle)
    if base is not None:
        _refuse_pickle(base, allow_pickle)
    import ehrdebug.models  # noqa: F401 - AutoConfig must know the project's model types before reading config.json
    from ehrdebug.io.hf_logs import held_load_report, mismatch_reason

    try:
        with held_load_report():  # transformers' tens-of-lines LOAD REPORT: shown on success, one line on failure
            config = AutoConfig.from_pretrained(str(weights_dir), local_files_only=True)
            model = model_class(config).from_pretrained(str(weights_dir), local_files_only=True,
                                                      use_safetensors=None if allow_pickle else True)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot load the model in {weights_dir}: {exc}".splitlines()[0]) from exc
    except RuntimeError as exc:
        if (why := mismatch_reason(exc)) is None:
            raise
        raise UserError(f"cannot load the model in {weights_dir}: {why}") from exc
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else next((d for d in (path, base) if d and has_tokenizer(d)), None)
    tokenizer = load_tokenizer(tok_dir) if tok_dir is not None else None
    if base is not None:
        from ehrdebug.adapters import apply_adapter
        from ehrdebug.adapters import tokenizer_dir as adapter_tokenizer_dir

        if not tokenizer_dir:  # the adapter's own tokenizer (its added tokens), else the base's
            found = adapter_tokenizer_dir(path, base, has_tokenizer)
            tokenizer = load_tokenizer(found) if found is not None else None
        model = apply_adapter(model, path, tokenizer, trainable_adapter)  # resized to the tokenizer first
    model.eval()
    return model, tokenizer


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """The transformers tokenizer of a checkpoint or tokenizer directory (``ehrdebug.tokenizers``' loader)."""
    from ehrdebug.tokenizers import load_transformers_tokenizer

    return load_transformers_tokenizer(os.fspath(path))
