"""Generation and teacher-forced evaluation shared by the seq2seq recipes.

``generation_kwargs`` turns the config's ``generation:`` block into ``model.generate`` arguments —
including seed 000's two end-of-sequence fixes: ``eos`` (stop on the dataset's ``<END>``) and
``block_pretrained_eos`` (``bad_words_ids=[[eos]]`` so the pretrained ``</s>`` cannot end the record).
"""

from __future__ import annotations

from typing import Any


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` if the tokenizer keeps it whole, else None."""
    from ehrdebug.decoding import token_id as _token_id

    return _token_id(tokenizer, token)


def generation_kwargs(tokenizer: Any, model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``generation:`` block through the core translation the doctor also uses
    (``ehrdebug.decoding.generate_kwargs``), so training and diagnosis decode alike."""
    from ehrdebug.decoding import generate_kwargs

    return generate_kwargs(tokenizer, config["generation"])


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
