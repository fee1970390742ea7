"""Generation and teacher-forced evaluation shared by the seq2seq recipes.

``generation_kwargs`` turns the config's ``generation:`` block into ``model.generate`` arguments —
including seed 000's two end-of-sequence fixes: ``eos`` (stop on the dataset's ``<END>``) and
``block_pretrained_eos`` (``bad_words_ids=[[eos]]`` so the pretrained ``</s>`` cannot end the record).
"""

from __future__ import annotations

from typing import Any


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` if the tokenizer keeps it whole, else None."""
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def generation_kwargs(tokenizer: Any, model: Any, config: dict[str, Any]) -> dict[str, Any]:
    g = config["generation"]
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


def clean_decode(tokenizer: Any, ids: list[int]) -> str:
    """Decode keeping added special tokens (``<v>``) but dropping the base's own (bos/eos/pad)."""
    drop = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}
    text = tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)
    return " ".join(text.split())


def eval_loss(model: Any, features: list[dict[str, Any]], collator: Any, device: Any, batch_size: int = 32) -> float:
    """Mean teacher-forced loss over ``features`` (weighted by label tokens)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            batch = collator([{k: f[k] for k in ("input_ids", "attention_mask", "labels")} for f in features[i : i + batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(**batch)
            n = int((batch["labels"] != -100).sum())
            total += float(out.loss) * n
            count += n
    return total / max(count, 1)


def continuation_probability(
    model: Any, tokenizer: Any, encoder_text: str, decoder_prefix: list[int], continuation: list[int], device: Any
) -> tuple[float, float]:
    """P(continuation | encoder, decoder prefix) by the chain rule, and P(pretrained EOS) at the first
    step (seed 000's "BART EOS dominates: 96.8% after <demo>")."""
    import torch

    enc = tokenizer(encoder_text, return_tensors="pt").to(device)
    dec = torch.tensor([decoder_prefix + continuation], device=device)
    with torch.no_grad():
        logits = model(**enc, decoder_input_ids=dec).logits[0]
    probs = logits.float().softmax(-1)
    start = len(decoder_prefix) - 1
    p = 1.0
    for k, tok in enumerate(continuation):
        p *= float(probs[start + k, tok])
    eos = tokenizer.eos_token_id
    return p, float(probs[start, eos]) if eos is not None else 0.0
