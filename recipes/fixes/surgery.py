"""Model/tokenizer surgery shared by the checkpoint fixes: load, find the added rows, re-initialise, save.

Everything loads with transformers' Auto classes from a local directory, so a user's checkpoint and
the shipped tiny bases take the same path. Saving goes to a *new* directory only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# files a checkpoint may carry that the model/tokenizer save does not rewrite (optimizer state etc.)
_KEEP_EXTRA = ("trainer_state.json", "training_args.bin", "state.json")


def load_tokenizer(path: Path) -> Any:
    from ehrdebug.loading import load_tokenizer as _load

    return _load(path)


def load_model(path: Path) -> Any:
    """The checkpoint's model through the one core loader (``ehrdebug.loading.load_model``)."""
    from ehrdebug.loading import load_model as _load

    model, _ = _load(path)
    return model


def save(model: Any, tokenizer: Any, src: Path, dst: Path) -> None:
    """Save model + tokenizer to ``dst`` and carry over the small extra files of ``src``."""
    dst.mkdir(parents=True, exist_ok=True)
    if model is not None:
        model.save_pretrained(str(dst))
    else:
        for item in src.iterdir():
            if item.is_file() and not item.name.startswith(("tokenizer", "special_tokens", "added_tokens", "vocab", "merges", "spiece")):
                shutil.copy2(item, dst / item.name)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(dst))
    for name in _KEEP_EXTRA:
        if (src / name).is_file() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)


def copy_checkpoint(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


def base_vocab_size(tokenizer: Any) -> int:
    """Size of the tokenizer's own model vocabulary, without tokens added on top of it."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None:
        return int(backend.get_vocab_size(with_added_tokens=False))
    return int(getattr(tokenizer, "vocab_size", len(tokenizer)))


def added_token_ids(tokenizer: Any, tokens: list[str] | None = None) -> list[int]:
    """Ids of ``tokens`` (default: every token added beyond the base vocabulary that the model has to learn).

    Pretrained specials (``<s>``, ``</s>``, ``<pad>``) live in the base vocabulary and are never counted.
    """
    if tokens:
        ids = tokenizer.convert_tokens_to_ids(tokens)
        return sorted({int(i) for i in ids if i is not None and i != tokenizer.unk_token_id})
    base = base_vocab_size(tokenizer)
    return sorted(i for i in tokenizer.get_added_vocab().values() if i >= base)


def pieces_without_added(tokenizer: Any, text: str, drop_ids: list[int]) -> list[int]:
    """Ids the tokenizer gives ``text`` when the added tokens ``drop_ids`` are not registered: the token's
    own text pieces (``<demo>`` -> ``<``, ``dem``, ``o``, ``>``)."""
    from tokenizers import Tokenizer

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    drop = set(drop_ids)
    state["added_tokens"] = [t for t in state.get("added_tokens", []) if t["id"] not in drop]
    plain = Tokenizer.from_str(json.dumps(state))
    ids = plain.encode(text, add_special_tokens=False).ids
    special = set(getattr(tokenizer, "all_special_ids", []))
    return [i for i in ids if i not in special and i not in drop]


def output_embeddings_untied(model: Any) -> Any:
    """The lm_head weight when it is a separate tensor from the input embeddings, else None."""
    out = model.get_output_embeddings()
    inp = model.get_input_embeddings()
    if out is None or out.weight.data_ptr() == inp.weight.data_ptr():
        return None
    return out


def init_rows_mean(model: Any, ids: list[int], pretrained_rows: int) -> None:
    """Set rows ``ids`` of the input (and untied output) embeddings to the mean of the pretrained rows."""
    import torch

    with torch.no_grad():
        for emb in filter(None, (model.get_input_embeddings(), output_embeddings_untied(model))):
            weight = emb.weight
            mean = weight[:pretrained_rows].mean(dim=0)
            for i in ids:
                weight[i] = mean
            bias = getattr(emb, "bias", None)
            if bias is not None:
                bias[ids] = bias[:pretrained_rows].mean()
    _sync_final_logits_bias(model, ids, pretrained_rows)


def init_rows_from(model: Any, targets: dict[int, list[int]], pretrained_rows: int) -> None:
    """Set each row ``i`` to the mean of rows ``targets[i]`` (its text pieces); mean of all rows if empty."""
    import torch

    with torch.no_grad():
        for emb in filter(None, (model.get_input_embeddings(), output_embeddings_untied(model))):
            weight = emb.weight
            fallback = weight[:pretrained_rows].mean(dim=0)
            for i, pieces in targets.items():
                weight[i] = weight[pieces].mean(dim=0) if pieces else fallback
    _sync_final_logits_bias(model, list(targets), pretrained_rows)


def _sync_final_logits_bias(model: Any, ids: list[int], pretrained_rows: int) -> None:
    """BART keeps a ``final_logits_bias`` buffer: give new rows the mean pretrained bias."""
    import torch

    bias = getattr(model, "final_logits_bias", None)
    if bias is None or not ids:
        return
    with torch.no_grad():
        bias[0, ids] = bias[0, :pretrained_rows].mean()


def resize(model: Any, size: int) -> None:
    """Resize the embeddings (and tied/untied lm_head) to ``size`` rows."""
    if model.get_input_embeddings().weight.shape[0] != size:
        model.resize_token_embeddings(size, mean_resizing=False)
