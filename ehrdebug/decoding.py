"""A run's recorded decoding settings (the ``generation:`` block of its config) as ``model.generate`` arguments.

One translation for the training recipes (which decode with it) and the doctor (which must judge the outputs
the run really produces): the dataset's end token as EOS, the pretrained EOS blocked, beams, penalties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {"max_new_tokens": 64, "do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
                            "num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "eos": "",
                            "block_pretrained_eos": False, "bad_words": [], "early_stopping": False}


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` if the tokenizer keeps it whole, else None."""
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def generate_kwargs(tokenizer: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``generate`` kwargs for ``settings`` (missing keys take ``DEFAULTS``); seed 000's two end-of-sequence
    fixes: ``eos`` stops on the dataset's end token, ``block_pretrained_eos`` bans the pretrained ``</s>``."""
    g = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(g["max_new_tokens"]),
        "do_sample": bool(g["do_sample"]),
        "num_beams": int(g["num_beams"]),
        "repetition_penalty": float(g["repetition_penalty"]),
        "no_repeat_ngram_size": int(g["no_repeat_ngram_size"] or 0),
        "pad_token_id": tokenizer.pad_token_id,
    }
    if g["do_sample"]:
        kwargs.update(temperature=float(g["temperature"]), top_k=int(g["top_k"] or 0), top_p=float(g["top_p"]))
    if kwargs["num_beams"] > 1:
        kwargs["early_stopping"] = bool(g["early_stopping"])
    eos_id = token_id(tokenizer, g["eos"]) if g["eos"] else None
    if eos_id is not None:
        kwargs["eos_token_id"] = eos_id
    bad: list[list[int]] = []
    if g["block_pretrained_eos"] and tokenizer.eos_token_id is not None and tokenizer.eos_token_id != eos_id:
        bad.append([tokenizer.eos_token_id])
        kwargs["forced_eos_token_id"] = None  # BART would otherwise force </s> at max length
    for text in g["bad_words"] or []:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            bad.append(ids)
    if bad:
        kwargs["bad_words_ids"] = bad
    return kwargs


def describe(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide what is generated, for a finding's evidence."""
    g = {**DEFAULTS, **settings}
    keys = ["do_sample", "num_beams", "repetition_penalty", "no_repeat_ngram_size", "max_new_tokens", "eos",
            "block_pretrained_eos"] + (["temperature", "top_k", "top_p"] if g["do_sample"] else [])
    return {k: g[k] for k in keys}
