"""Causal language models over code timelines (EHRMamba): what the text probes measure, in a timeline's terms.

A CEHR timeline is ``[VS] codes… [VE] <gap> [VS] codes… [VE]`` (``ehrdebug.models.cehr_inputs``), and the model
reads it with per-position streams (token types, visit orders and segments, days and ages). Its structural
tokens are the visit start/end tokens and the artificial time tokens between visits; its grammar is that
order; its vocabulary is the codes the run's tokenizer knows. So here:

* ``timeline_special_tokens`` (``model.special_token_probability``): teacher-forced over the data's timelines,
  the probability and rank the model gives each structural token where it comes next, the mass on the
  time-token class after a visit end and on [VS] after a time token (slots the grammar fixes), the lift over
  the token's base rate, and the mass the model puts on ``[PAD]`` at real positions (padding in the loss).
* ``probes.timeline_generation``: free-running continuation of timelines, judged (``generation.tf_vs_sampling``).

Pure functions of (model, tokenizer, code records, layout); findings only, an ``ok`` one with figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity

SPECIAL = "model.special_token_probability"
#: next-token kinds after which the grammar fixes what comes: a gap token after [VE], [VS] after a gap token
FIXED_SLOTS = {"visit_end": "time", "time": "visit_start"}
FOLLOWS = {"visit_end": {"time"}, "time": {"visit_start"}, "visit_start": {"code"}, "code": {"code", "visit_end"},
           "class": {"visit_start", "code"}, "task": {"class", "visit_start", "code"}}  # fmt: skip
NEVER = ("pad", "unk", "other", "class", "task")  # never generated inside a timeline


@dataclass(frozen=True)
class Layout:
    """How the run laid its timelines out: the prefix before the first visit and the length it kept."""

    max_length: int = 256
    task_token: str | None = None
    add_cls: bool = False


def code_records(examples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The examples when they are code records (a ``codes`` list each), else None (text examples)."""
    if not examples or not all(isinstance(e.get("codes"), list) for e in examples):
        return None
    usable = [dict(e) for e in examples if e["codes"]]
    return usable or None


def is_timeline_lm(model: Any, tokenizer: Any) -> bool:
    """A causal LM (generates, not encoder-decoder) whose tokenizer holds the CEHR visit and time tokens."""
    from ehrdebug.models.cehr_inputs import TIME_TOKENS, VISIT_END, VISIT_START

    config = getattr(model, "config", None)
    can = getattr(model, "can_generate", None)
    if tokenizer is None or getattr(config, "is_encoder_decoder", False) or not (callable(can) and can()):
        return False
    vocab = tokenizer.get_vocab()
    return VISIT_START in vocab and VISIT_END in vocab and any(t in vocab for t in TIME_TOKENS)


class Kinds:
    """Each vocabulary id's kind: code, visit_start, visit_end, time, pad, unk, class, task or other special."""

    def __init__(self, tokenizer: Any) -> None:
        from ehrdebug.codetok import SPECIAL_TOKENS
        from ehrdebug.models.cehr_inputs import TASK_TOKENS, TIME_TOKENS, VISIT_END, VISIT_START

        vocab = tokenizer.get_vocab()
        named = {VISIT_START: "visit_start", VISIT_END: "visit_end", **dict.fromkeys(TIME_TOKENS, "time"),
                 **dict.fromkeys(TASK_TOKENS, "task"), "[PAD]": "pad", "[UNK]": "unk", "[CLS]": "class"}  # fmt: skip
        special = set(SPECIAL_TOKENS) | set(getattr(tokenizer, "all_special_tokens", []) or [])
        self.tokens = {i: t for t, i in vocab.items()}
        self.of = {i: named.get(t, "other" if t in special else "code") for t, i in vocab.items()}
        self.ids = {kind: [i for i, k in self.of.items() if k == kind] for kind in set(self.of.values())}
        self.pad = vocab.get("[PAD]", tokenizer.pad_token_id)

    def kind(self, tid: int) -> str:
        return self.of.get(int(tid), "other")


def encode_all(
    tokenizer: Any, records: Sequence[Mapping[str, Any]], layout: Layout, model: Any
) -> list[dict[str, Any]]:
    """The run's encoding of each record (``encode_cehr``), visit orders clamped into the model's table."""
    from ehrdebug.models.cehr_inputs import encode_cehr

    visits = int(getattr(model.config, "max_visits", 0) or 0)
    return [encode_cehr(tokenizer, r, layout.max_length, task_token=layout.task_token, add_cls=layout.add_cls,
                        max_visits=visits) for r in records]  # fmt: skip


def forward_logp(model: Any, features: Sequence[Mapping[str, Any]]) -> Any:
    """Log-probabilities [rows, width, vocab] of a right-padded batch of CEHR features (no gradients)."""
    import torch

    from ehrdebug.models.cehr_inputs import FLOAT_KEYS, INT_KEYS, collate_cehr

    batch = collate_cehr([{k: f[k] for k in (*INT_KEYS, *FLOAT_KEYS)} for f in features])
    batch.pop("special_tokens_mask", None)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
    return torch.log_softmax(logits.float(), dim=-1).cpu()


@dataclass
class Scored:
    """Teacher-forced next-token figures over real positions: (row, position, next id, its prob, its rank)."""

    positions: list[tuple[int, int, int, float, int]]
    logp: list[Any]  # per row: [length, vocab] log-probabilities
    features: list[dict[str, Any]]


def teacher_force(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], layout: Layout,
                  batch_size: int = 16) -> Scored:  # fmt: skip
    """Every real position of the encoded ``records`` scored against the token that follows it."""
    features = encode_all(tokenizer, records, layout, model)
    positions, rows = [], []
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        logp = forward_logp(model, chunk)
        for j, f in enumerate(chunk):
            n = len(f["input_ids"])
            row = logp[j, :n]
            rows.append(row)
            for t in range(n - 1):
                nxt = int(f["input_ids"][t + 1])
                p = row[t, nxt]
                positions.append((start + j, t, nxt, float(p.exp()), int((row[t] > p).sum()) + 1))
    return Scored(positions, rows, features)


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def timeline_special_tokens(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], layout: Layout,
                            config: EhrDebugConfig | None = None, *, max_records: int = 64) -> list[Finding]:  # fmt: skip
    """Probability of the structural tokens where they belong, slot by slot, and [PAD]'s mass at real positions."""
    import torch

    cfg = config or EhrDebugConfig()
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        scored = teacher_force(model, tokenizer, list(records)[:max_records], layout)
    finally:
        model.train(was_training)
    kinds = Kinds(tokenizer)
    if not scored.positions:
        return [
            Finding(SPECIAL, Severity.INFO, "no timeline has two tokens to score", rule="needs code records")
        ]
    base = Counter(kinds.kind(nxt) for _, _, nxt, _, _ in scored.positions)
    total = sum(base.values())
    per_kind: dict[str, list[tuple[float, int]]] = {}
    for _, _, nxt, p, rank in scored.positions:
        if kinds.kind(nxt) in ("visit_start", "visit_end", "time"):
            per_kind.setdefault(kinds.kind(nxt), []).append((p, rank))
    table = []
    for kind, vals in sorted(per_kind.items()):
        ranks = sorted(r for _, r in vals)
        table.append({"kind": kind, "n": len(vals), "mean_prob": round(mean([p for p, _ in vals]), 4),
                      "median_rank": ranks[len(ranks) // 2], "base_rate": round(base[kind] / total, 4),
                      "lift": round(mean([p for p, _ in vals]) / (base[kind] / total), 2)})  # fmt: skip
    slots: dict[str, list[float]] = {}
    fixed_slot_mass(scored, kinds, slots)
    pad_mass, pad_top, pad_after_end = [], 0, []
    for row, t, _, _, _ in scored.positions:
        dist = scored.logp[row][t].exp()
        if kinds.pad is not None:
            pad_mass.append(float(dist[kinds.pad]))
            pad_top += int(int(torch.argmax(dist)) == kinds.pad)
            if kinds.kind(scored.features[row]["input_ids"][t]) == "visit_end":  # the timeline goes on here
                pad_after_end.append(float(dist[kinds.pad]))
    slot_table = {
        name: {"n": len(v), "mean_class_mass": round(mean(v), 4)} for name, v in sorted(slots.items())
    }
    evidence: dict[str, Any] = {"timelines": len(scored.features), "positions_scored": total, "layout": vars(layout),
                                "structural_tokens": table, "fixed_slots": slot_table,
                                "pad_mass_at_real_positions": round(mean(pad_mass), 4),
                                "pad_top1_share": round(pad_top / total, 4),
                                "pad_mass_after_visit_end": round(mean(pad_after_end), 4),
                                "method": "teacher-forced, one forward pass per 16 timelines with the run's streams"}  # fmt: skip
    examples = _slot_examples(scored, kinds, tokenizer)
    thr = cfg.threshold("expected_token_prob_fail")
    after_end = evidence["pad_mass_after_visit_end"]
    if evidence["pad_top1_share"] >= 0.5 or evidence["pad_mass_at_real_positions"] >= 0.5 or after_end >= 0.2:
        return [Finding(SPECIAL, Severity.FAIL, f"[PAD] takes {after_end:.0%} of the mass after a visit end where the timeline "
                        f"goes on (top-1 at {evidence['pad_top1_share']:.0%} of real positions): padding carried loss, so the "
                        "model learned that timelines continue into [PAD]", evidence, examples, ["mask-padding-in-loss"],
                        rule="fail when [PAD] gets >= 20% of the mass after a [VE] the timeline continues from, or is top-1 "
                             "at / takes >= 50% of real positions")]  # fmt: skip
    low = [row for row in table if row["mean_prob"] < thr]
    weak = {name: s for name, s in slot_table.items() if s["mean_class_mass"] < 0.5}
    if low:
        what = ", ".join(f"{r['kind']} p={r['mean_prob']:.4f} (rank {r['median_rank']})" for r in low)
        return [Finding(SPECIAL, Severity.FAIL, f"structural tokens get almost no probability where they belong: {what}",
                        evidence, examples, ["train-longer"],
                        rule=f"fail when a structural kind's mean probability at its positions is < {thr}")]  # fmt: skip
    if weak:
        what = ", ".join(f"{name} {s['mean_class_mass']:.2f}" for name, s in weak.items())
        return [Finding(SPECIAL, Severity.WARN, f"the visit/time grammar is not learned yet: mass on the fixed slot {what}",
                        evidence, examples, ["train-longer"],
                        rule="warn when a slot the grammar fixes (a gap token after [VE], [VS] after a gap) gets < 0.5 of the mass")]  # fmt: skip
    summary = (
        "; ".join(f"{name} {s['mean_class_mass']:.2f}" for name, s in slot_table.items()) or "no fixed slots"
    )
    kinds_txt = ", ".join(f"{r['kind']} p={r['mean_prob']:.3f} (x{r['lift']} base rate)" for r in table)
    return [
        Finding(
            SPECIAL,
            Severity.OK,
            f"structural tokens are likely where they belong: {summary}; {kinds_txt}",
            evidence,
            examples[:2],
            rule=f"fail under p={thr} or [PAD] top-1 at >= 50%; warn when a fixed slot < 0.5",
        )
    ]


def fixed_slot_mass(
    scored: Scored, kinds: Kinds, by_slot: dict[str, list[float]] | None = None
) -> list[float]:
    """The mass on the kind the grammar fixes (a gap token after [VE], [VS] after a gap token) at each such slot."""
    out = []
    for row, t, nxt, _, _ in scored.positions:
        prev = kinds.kind(scored.features[row]["input_ids"][t])
        if prev in FIXED_SLOTS and kinds.kind(nxt) == FIXED_SLOTS[prev]:
            mass = float(scored.logp[row][t, kinds.ids[FIXED_SLOTS[prev]]].exp().sum())
            out.append(mass)
            if by_slot is not None:
                by_slot.setdefault(f"{FIXED_SLOTS[prev]} after {prev}", []).append(mass)
    return out


def _slot_examples(scored: Scored, kinds: Kinds, tokenizer: Any, k: int = 3) -> list[dict[str, Any]]:
    import torch

    out = []
    for row, t, nxt, p, rank in scored.positions:
        if kinds.kind(nxt) in ("visit_end", "time", "visit_start") and len(out) < k:
            ids = scored.features[row]["input_ids"]
            values, top = torch.topk(scored.logp[row][t].exp(), 3)
            out.append({"context": " ".join(kinds.tokens.get(int(i), "?") for i in ids[max(0, t - 7) : t + 1]),
                        "expected": kinds.tokens.get(nxt), "prob": round(p, 4), "rank": rank,
                        "top": [f"{kinds.tokens.get(int(i))} {float(v):.3f}" for v, i in zip(values, top, strict=True)]})  # fmt: skip
    return out
