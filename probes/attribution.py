"""attribution: which input tokens drive a chosen output token or label (integrated gradients).

Integrated gradients over the output of the input-embedding layer (what captum's
LayerIntegratedGradients on that layer computes), taken with captum's IntegratedGradients on
``inputs_embeds`` because (a) encoder-decoder models call their shared embedding twice (encoder and
decoder), and (b) the baseline is the mean embedding row, which has no token id: a pad baseline is out of
distribution for most models and ranks filler tokens above the one that decides the output.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from probes.special_tokens import (
    encode_causal,
    example_pair,
    first_content_position,
    is_seq2seq,
    model_device,
    piece,
)

PROBE = "attribution.integrated_gradients"


def _target_id(tokenizer: Any, target: str | int | None) -> int | None:
    if target is None or isinstance(target, int):
        return target
    tid = tokenizer.convert_tokens_to_ids(target)
    if tid is None or tid == tokenizer.unk_token_id:
        ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        tid = ids[0] if ids else None
    return tid


def _pick(scores: Any, tid: int | None, cid: int | None, contrastive: bool) -> tuple[int, int | None]:
    order = scores[0].argsort(descending=True).tolist()
    tid = order[0] if tid is None else int(tid)
    if not contrastive:
        return tid, None
    return tid, (next(i for i in order if i != tid) if cid is None else int(cid))


def _score(logp: Any, tid: int, cid: int | None) -> Any:
    return logp[:, tid] - logp[:, cid] if cid is not None else logp[:, tid]


def token_attributions(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    target: str | int | None = None,
    decoder_prefix_ids: list[int] | None = None,
    contrast: str | int | None = None,
    contrastive: bool = True,
    n_steps: int = 24,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ranked attribution table for the next output token after ``text`` (after ``decoder_prefix_ids`` for seq2seq).

    ``target`` is a token (piece or id) for LMs or a label index for classifiers; None explains the
    model's own top prediction. With ``contrastive`` (default) the attributed score is
    log p(target) - log p(contrast), the contrast being the runner-up unless given: "why this token rather
    than the next best", which keeps tokens that only say "an answer comes here" out of the ranking.
    Returns (rows ranked by |attribution|, what was explained).
    """
    import torch
    from captum.attr import IntegratedGradients

    device = model_device(model)
    enc = tokenizer(text, return_tensors="pt").to(device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if not is_seq2seq(model) and ids.shape[1] > 1 and ids[0, -1] == tokenizer.eos_token_id:
        ids, mask = ids[:, :-1], mask[:, :-1]
    special = set(tokenizer.all_special_ids)
    emb = model.get_input_embeddings()
    dec_ids = None
    if is_seq2seq(model):
        dec = [model.config.decoder_start_token_id] + list(decoder_prefix_ids or [])
        dec_ids = torch.tensor([dec], device=device)

    def forward(embeds: Any) -> Any:
        kw: dict[str, Any] = {"inputs_embeds": embeds, "attention_mask": mask.expand(embeds.shape[0], -1)}
        if dec_ids is not None:
            kw["decoder_input_ids"] = dec_ids.expand(embeds.shape[0], -1)
        logits = model(**kw).logits
        return torch.log_softmax((logits[:, -1] if logits.dim() == 3 else logits).float(), -1)

    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with torch.no_grad():
            inputs = emb(ids).detach()
            normal = torch.tensor([i for i in range(emb.weight.shape[0]) if i not in special], device=device)
            mean_row = emb(normal).mean(0)
            keep = torch.tensor([[t in special for t in ids[0].tolist()]], device=device)[..., None]
            baselines = torch.where(keep, inputs, mean_row.expand_as(inputs))
            scores = forward(inputs)
        classifier = scores.shape[-1] != emb.weight.shape[0]
        resolve = (lambda t: t) if classifier else (lambda t: _target_id(tokenizer, t))
        tid, cid = _pick(scores, resolve(target), resolve(contrast), contrastive)
        attr = IntegratedGradients(lambda e: _score(forward(e), tid, cid)).attribute(inputs, baselines, n_steps=n_steps)
    finally:
        model.train(was_training)
    per_token = attr.sum(-1)[0].detach().float().cpu()
    total = float(per_token.abs().sum()) or 1.0
    rows = [{"position": i, "piece": piece(tokenizer, t), "attribution": round(float(a), 5), "share": round(abs(float(a)) / total, 4)}
            for i, (t, a) in enumerate(zip(ids[0].tolist(), per_token.tolist(), strict=True)) if t not in special]
    rows.sort(key=lambda r: -abs(r["attribution"]))
    name = (lambda i: f"label {i}") if classifier else (lambda i: piece(tokenizer, i))
    explained = {"target": name(tid), "target_id": tid, "target_prob": round(float(scores[0, tid].exp()), 4),
                 "contrast": name(cid) if cid is not None else None, "n_steps": n_steps}
    return rows, explained


def attribution(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    config: EhrDebugConfig | None = None,
    *,
    target: str | int | None = None,
    max_examples: int = 2,
    n_steps: int = 16,
) -> list[Finding]:
    """Info finding: the input tokens that drive the expected first target token (``target`` overrides it)."""
    cfg = config or EhrDebugConfig()
    tables = []
    for ex in examples[:max_examples]:
        prompt, tgt = example_pair(ex, cfg)
        prefix: list[int] = []
        expected: str | int | None = target
        if target is None and tgt:
            if is_seq2seq(model):
                labels = list(tokenizer(text_target=tgt)["input_ids"])
                pos = first_content_position(tokenizer, labels)
                prefix, expected = labels[:pos], labels[pos]
            else:
                _, t_ids = encode_causal(tokenizer, prompt, tgt)
                expected = t_ids[0] if t_ids else None
        rows, explained = token_attributions(model, tokenizer, prompt, target=expected, decoder_prefix_ids=prefix, n_steps=n_steps)
        tables.append({"prompt": prompt, **explained, "ranking": rows[:8]})
    if not tables:
        return [Finding(PROBE, Severity.INFO, "no examples to attribute")]
    top = tables[0]
    lead = top["ranking"][0] if top["ranking"] else {"piece": "-", "share": 0.0}
    return [Finding(PROBE, Severity.INFO,
                    f"{top['target']!r} after {top['prompt']!r} is driven most by {lead['piece']!r} ({lead['share']:.0%} of |attribution|)",
                    {"tables": tables}, tables, [],
                    rule="integrated gradients over the input embeddings, pad baseline; an explanation, not a verdict")]
