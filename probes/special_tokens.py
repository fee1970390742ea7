"""model.special_token_probability: does the model give the dataset's next token any probability?

Seed 000: after ``56 ASIAN M <demo>`` the model put 71.4% on the pretrained subword ``AS`` and
0.000045 on ``<v>``; once fixed, BART's own EOS took 96.8% of the mass where the data's ``<END>``/``<v>``
should come. This probe measures exactly that, teacher-forced, on prompts drawn from the data: the
probability and rank of the expected token, the top-k alternatives with their pieces, the same for every
structural token inside the target, and how much mass a pretrained EOS (one that is not the dataset's
end token) takes. The example/teacher-forcing helpers here are shared by the other model probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.grammar import DEMO, END, STRUCTURAL_TOKENS, split_prompt

PROBE = "model.special_token_probability"


# ---------------------------------------------------------------- shared helpers (used by other probes)
def example_pair(example: dict[str, Any], config: EhrDebugConfig | None = None) -> tuple[str, str]:
    """(prompt, target) from ``prompt/target``, ``input/output``, the configured fields, or a full line."""
    cfg = config or EhrDebugConfig()
    for a, b in (("prompt", "target"), ("input", "output"), (cfg.text_field, cfg.target_field)):
        if a and b and a in example and b in example:
            return str(example[a]), str(example[b])
    for key in ("text", cfg.text_field):
        if key and key in example:
            return split_prompt(str(example[key]))
    raise ValueError(f"example has none of prompt/target, input/output, text: {sorted(example)}")


def is_seq2seq(model: Any) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        import torch

        return torch.device("cpu")


def piece(tokenizer: Any, token_id: int) -> str:
    tok = tokenizer.convert_ids_to_tokens(int(token_id))
    return str(tok) if tok is not None else f"<id {token_id}>"


def single_token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` when the tokenizer knows it as one piece, else None."""
    if not token:
        return None
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tokenizer.unk_token_id is not None and tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(tid)


def end_token_ids(tokenizer: Any, config: EhrDebugConfig | None) -> tuple[int | None, int | None]:
    """(the dataset's own end token id, a pretrained EOS id that differs from it)."""
    cfg = config or EhrDebugConfig()
    end_id = single_token_id(tokenizer, cfg.end_token or END)
    eos_id = tokenizer.eos_token_id
    if end_id is None:
        return (int(eos_id) if eos_id is not None else None), None
    foreign = int(eos_id) if eos_id is not None and int(eos_id) != end_id else None
    return end_id, foreign


@dataclass
class TeacherForced:
    """Next-token distributions at each target position, with the target ids they should predict."""

    prompt: str
    target: str
    target_ids: list[int]
    probs: Any  # torch.Tensor [len(target_ids), vocab]
    loss: float


def encode_causal(tokenizer: Any, prompt: str, target: str) -> tuple[list[int], list[int]]:
    p_ids = list(tokenizer(prompt)["input_ids"])
    eos = tokenizer.eos_token_id
    if p_ids and eos is not None and p_ids[-1] == eos and len(p_ids) > 1:
        p_ids = p_ids[:-1]
    sep = "" if prompt[-1:].isspace() or target[:1].isspace() else " "  # a templated prompt ends on its newline
    full = list(tokenizer(f"{prompt}{sep}{target}")["input_ids"])
    if full[: len(p_ids)] == p_ids and len(full) > len(p_ids):
        return p_ids, full[len(p_ids) :]
    return p_ids, list(tokenizer(target, add_special_tokens=False)["input_ids"])


def teacher_force(model: Any, tokenizer: Any, prompt: str, target: str) -> TeacherForced:
    """One forward pass scoring ``target`` after ``prompt`` (encoder/decoder or causal)."""
    import torch

    device = model_device(model)
    with torch.no_grad():
        if is_seq2seq(model):
            enc = tokenizer(prompt, return_tensors="pt").to(device)
            labels = list(tokenizer(text_target=target)["input_ids"])
            lab = torch.tensor([labels], device=device)
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab)
            logits = out.logits[0]
            target_ids = labels
        else:
            p_ids, t_ids = encode_causal(tokenizer, prompt, target)
            ids = torch.tensor([p_ids + t_ids], device=device)
            logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : len(p_ids) + len(t_ids) - 1]
            target_ids = t_ids
        logp = torch.log_softmax(logits.float(), dim=-1)
        tgt = torch.tensor(target_ids, device=logp.device)
        loss = float(-logp[torch.arange(len(target_ids)), tgt].mean()) if target_ids else float("nan")
    return TeacherForced(prompt, target, target_ids, logp.exp().cpu(), loss)


def first_content_position(tokenizer: Any, target_ids: list[int]) -> int:
    """Skip a leading BOS/pad in the labels (BART labels start with ``<s>``)."""
    skip = {tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.cls_token_id} - {None}
    for i, tid in enumerate(target_ids):
        if tid not in skip:
            return i
    return 0


def anchor_position(tokenizer: Any, target_ids: list[int], demo_id: int | None) -> int:
    """Where the expected token is read: right after ``<demo>`` when the target holds the whole line
    (the decoder writes ``56 ASIAN M <demo> <v> …``), else the first content position."""
    pos = first_content_position(tokenizer, target_ids)
    if demo_id is not None and demo_id in target_ids[pos:-1]:
        return target_ids.index(demo_id, pos) + 1
    return pos


def top_k_table(tokenizer: Any, probs: Any, k: int) -> list[dict[str, Any]]:
    import torch

    values, ids = torch.topk(probs, min(k, probs.shape[-1]))
    return [
        {"rank": r + 1, "piece": piece(tokenizer, int(i)), "prob": round(float(v), 6), "id": int(i)}
        for r, (v, i) in enumerate(zip(values.tolist(), ids.tolist(), strict=True))
    ]


def _rank(probs: Any, token_id: int) -> int:
    return int((probs > probs[token_id]).sum()) + 1


def code_timelines(model: Any, tokenizer: Any, examples: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The examples when they are code records and the model a causal LM over CEHR timelines (EHRMamba)."""
    from probes.timeline_lm import code_records, is_timeline_lm

    records = code_records(examples)
    return records if records is not None and is_timeline_lm(model, tokenizer) else None


# ---------------------------------------------------------------- the probe
def special_token_probability(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    config: EhrDebugConfig | None = None,
    *,
    base_vocab_size: int | None = None,
    top_k: int = 5,
    max_examples: int = 8,
    generation_kwargs: dict[str, Any] | None = None,
) -> list[Finding]:
    """Probability/rank of the expected next token and of each structural token; pretrained-EOS dominance.

    EOS dominance is judged against the decoding in ``generation_kwargs``: when it blocks that EOS
    (``bad_words_ids`` / ``suppress_tokens``, seed 000's fix) the mass is still reported, as info.
    """
    import torch

    cfg = config or EhrDebugConfig()
    if (timelines := code_timelines(model, tokenizer, examples)) is not None:  # code records, a causal LM over them
        from probes.timeline_lm import Layout, timeline_special_tokens

        return timeline_special_tokens(model, tokenizer, timelines, Layout(max_length=cfg.max_length or 256), cfg)
    pairs = [example_pair(ex, cfg) for ex in examples[:max_examples]]
    if not pairs:
        return [Finding(PROBE, Severity.INFO, "no examples to score", rule="needs prompts drawn from the data")]
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        scored = [teacher_force(model, tokenizer, p, t) for p, t in pairs]
    finally:
        model.train(was_training)
    end_id, foreign_eos = end_token_ids(tokenizer, cfg)
    structural = {
        tid: tok for tok in (cfg.structural_tokens or list(STRUCTURAL_TOKENS)) if (tid := single_token_id(tokenizer, tok)) is not None
    }
    missing_structural = [t for t in (cfg.structural_tokens or []) if single_token_id(tokenizer, t) is None]

    demo_id = single_token_id(tokenizer, DEMO)
    first_rows, first_probs, per_token, eos_first, eos_inside = [], [], {}, [], []
    for tf in scored:
        if not tf.target_ids:
            continue
        pos = anchor_position(tokenizer, tf.target_ids, demo_id)
        exp_id = tf.target_ids[pos]
        dist = tf.probs[pos]
        first_probs.append(dist)
        first_rows.append(
            {
                "prompt": tf.prompt,
                "expected": piece(tokenizer, exp_id),
                "prob": round(float(dist[exp_id]), 6),
                "rank": _rank(dist, exp_id),
                "top": [f"{r['piece']} {r['prob']:.3f}" for r in top_k_table(tokenizer, dist, 3)],
            }
        )
        for i, tid in enumerate(tf.target_ids):
            if tid in structural or tid == end_id:
                per_token.setdefault(tid, []).append((float(tf.probs[i][tid]), _rank(tf.probs[i], tid)))
        if foreign_eos is not None:
            eos_first.append(float(dist[foreign_eos]))
            stop = tf.target_ids.index(end_id) if end_id in tf.target_ids else len(tf.target_ids)
            eos_inside.extend(float(tf.probs[i][foreign_eos]) for i in range(pos, stop) if tf.target_ids[i] != foreign_eos)
    if not first_rows:
        return [Finding(PROBE, Severity.INFO, "examples have empty targets", rule="needs non-empty targets")]

    mean_first = torch.stack(first_probs).mean(0)
    expected_pieces = {r["expected"] for r in first_rows}
    exp_probs = [r["prob"] for r in first_rows]
    mean_exp = sum(exp_probs) / len(exp_probs)
    token_table = [
        {
            "token": structural.get(tid, piece(tokenizer, tid)),
            "id": tid,
            "new": bool(base_vocab_size is not None and tid >= base_vocab_size),
            "n": len(vals),
            "mean_prob": round(sum(p for p, _ in vals) / len(vals), 6),
            "min_prob": round(min(p for p, _ in vals), 6),
            "mean_rank": round(sum(r for _, r in vals) / len(vals), 1),
        }
        for tid, vals in sorted(per_token.items())
    ]
    thr = cfg.threshold("expected_token_prob_fail")
    low_tokens = [row for row in token_table if row["mean_prob"] < thr]
    evidence: dict[str, Any] = {
        "n_examples": len(first_rows),
        "expected_first": sorted(expected_pieces),
        "expected_first_mean_prob": round(mean_exp, 6),
        "expected_first_median_rank": sorted(r["rank"] for r in first_rows)[len(first_rows) // 2],
        "top_k_first_position": top_k_table(tokenizer, mean_first, top_k),
        "structural_tokens": token_table,
    }
    watch = {**structural, **{i: piece(tokenizer, i) for i in (
        tokenizer.pad_token_id, tokenizer.eos_token_id, end_id) if i is not None}}
    evidence["first_position_probs"] = {name: round(float(mean_first[tid]), 6) for tid, name in sorted(watch.items())}
    if missing_structural:
        evidence["not_single_tokens"] = missing_structural
    findings: list[Finding] = []
    new_ids = {row["id"] for row in token_table if row["new"]}
    if mean_exp < thr or low_tokens:
        first_ids = {tf.target_ids[anchor_position(tokenizer, tf.target_ids, demo_id)] for tf in scored if tf.target_ids}
        added = new_ids | ({i for i in first_ids if i >= base_vocab_size} if base_vocab_size is not None else set())
        structural_involved = bool(low_tokens) or bool(first_ids & set(structural))
        if added or (base_vocab_size is None and structural_involved):
            recipes = ["init-new-embeddings-mean", "warmup-new-embeddings"]
        else:
            recipes = ["train-longer"]  # ordinary tokens the model has not learned to predict yet
        if evidence["top_k_first_position"][0]["id"] == tokenizer.pad_token_id:
            recipes = ["mask-label-padding"]  # PAD predicted where the answer starts: pad labels carried loss
        if missing_structural:
            recipes.insert(0, "register-structural-tokens")
        worst = min([mean_exp] + [r["mean_prob"] for r in low_tokens])
        what = ", ".join(sorted(expected_pieces | {r["token"] for r in low_tokens}))
        top = evidence["top_k_first_position"][0]
        findings.append(
            Finding(
                PROBE,
                Severity.FAIL,
                f"expected token(s) {what} get p={worst:.6f}; the model prefers {top['piece']!r} ({top['prob']:.3f})",
                evidence,
                first_rows[:5],
                recipes,
                rule=f"fail when the expected next token or a structural token has mean probability < {thr}",
            )
        )
    elif evidence["expected_first_median_rank"] > 1:
        findings.append(
            Finding(
                PROBE,
                Severity.WARN,
                f"expected first token {', '.join(sorted(expected_pieces))} is not the model's top choice "
                f"(p={mean_exp:.3f}, median rank {evidence['expected_first_median_rank']})",
                evidence,
                first_rows[:5],
                ["warmup-new-embeddings"] if new_ids else [],
                rule="warn when the expected next token is not ranked first (median over prompts)",
            )
        )
    if not findings:
        findings.append(
            Finding(
                PROBE,
                Severity.OK,
                f"expected tokens are likely: {', '.join(sorted(expected_pieces))} p={mean_exp:.3f}",
                evidence,
                first_rows[:3],
                rule=f"fail under p={thr}; warn when not ranked first",
            )
        )
    if foreign_eos is not None and eos_first:
        eos_evidence, eos_finding = _eos_finding(tokenizer, cfg, foreign_eos, end_id, eos_first, eos_inside, first_rows,
                                                 blocked=eos_blocked(foreign_eos, generation_kwargs))
        evidence["eos"] = eos_evidence
        findings.extend(eos_finding)
    return findings


def _eos_finding(
    tokenizer: Any,
    cfg: EhrDebugConfig,
    eos_id: int,
    end_id: int | None,
    eos_first: list[float],
    eos_inside: list[float],
    rows: list[dict[str, Any]],
    blocked: bool = False,
) -> tuple[dict[str, Any], list[Finding]]:
    share = sum(eos_first) / len(eos_first)
    inside = sum(eos_inside) / len(eos_inside) if eos_inside else 0.0
    thr = cfg.threshold("eos_dominance")
    evidence = {
        "pretrained_eos": piece(tokenizer, eos_id),
        "dataset_end_token": piece(tokenizer, end_id) if end_id is not None else None,
        "eos_prob_first_position": round(share, 4),
        "eos_prob_inside_target": round(inside, 4),
        "positions_scored": len(eos_inside),
        "blocked_by_decoding": blocked,
    }
    if (share >= thr or inside >= thr) and blocked:
        return evidence, [
            Finding(
                PROBE,
                Severity.INFO,
                f"pretrained EOS {evidence['pretrained_eos']!r} takes {share:.1%} of the mass after the prompt, "
                "but the decoding blocks it",
                evidence,
                rule=f"info when a pretrained EOS with mean probability >= {thr} is blocked by bad_words_ids/suppress_tokens",
            )
        ]
    if share >= thr or inside >= thr:
        return evidence, [
            Finding(
                PROBE,
                Severity.FAIL,
                f"pretrained EOS {evidence['pretrained_eos']!r} takes {share:.1%} of the mass after the prompt "
                f"({inside:.1%} inside targets); generation will stop before {evidence['dataset_end_token']!r}",
                evidence,
                [{"prompt": r["prompt"], "expected": r["expected"], "top": r["top"]} for r in rows[:3]],
                ["block-pretrained-eos"],
                rule=f"fail when a pretrained EOS that is not the dataset's end token has mean probability >= {thr}",
            )
        ]
    return evidence, []


def eos_blocked(eos_id: int, generation_kwargs: dict[str, Any] | None) -> bool:
    """True when the decoding can never emit ``eos_id`` (``bad_words_ids=[[eos]]`` or ``suppress_tokens``)."""
    kw = generation_kwargs or {}
    bad = kw.get("bad_words_ids") or []
    suppressed = kw.get("suppress_tokens") or []
    return any(list(seq) == [eos_id] for seq in bad if isinstance(seq, (list, tuple))) or eos_id in suppressed
