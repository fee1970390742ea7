"""generation.tf_vs_sampling on a causal LM over code timelines (EHRMamba): free-running continuation, judged.

``continue_timelines`` cuts each timeline after the [VE] closing its second-to-last visit and continues it
token by token, the CEHR streams extended by the rules the encoder applies (a time token opens the next visit
and advances days and age), with the sampling settings and seed stated. ``judge_continuation`` checks each:
the visit/time grammar (``[VE]`` → gap token → ``[VS]`` → codes → ``[VE]``), tokens never generated inside a
timeline ([PAD], [UNK], [CLS], task tokens), codes known to the run's tokenizer (and the data's code list when
there is one), repetition loops. ``timeline_tf_vs_sampling`` sets the teacher-forced figures (next-token
accuracy; mass on the slots the grammar fixes) against the valid share, with its 95% interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.timeline_lm import (
    FOLLOWS,
    NEVER,
    Kinds,
    Layout,
    Scored,
    encode_all,
    fixed_slot_mass,
    forward_logp,
    mean,
    teacher_force,
)

GENERATION = "generation.tf_vs_sampling"
GAP_DAYS = {"W": 7, "M": 30}  # a time token's days: its bucket's middle ([LT]: 540)


@dataclass
class Continued:
    prompts: list[list[int]]
    ids: list[list[int]]  # generated ids only
    settings: dict[str, Any] = field(default_factory=dict)


def cut_prompt(feature: Mapping[str, Any], kinds: Kinds) -> int | None:
    """Where to cut a timeline: after the [VE] that closes its second-to-last visit (its only one when it has one)."""
    ends = [i for i, tid in enumerate(feature["input_ids"]) if kinds.kind(tid) == "visit_end"]
    if not ends:
        return None
    return (ends[-2] if len(ends) > 1 else ends[-1]) + 1


def _gap_days(token: str) -> float:
    body = token.strip("[]")
    if body[:1] in GAP_DAYS and body[1:].isdigit():
        return GAP_DAYS[body[0]] * int(body[1:]) + GAP_DAYS[body[0]] / 2
    return 540.0


def _extend(feature: dict[str, Any], tid: int, kinds: Kinds, max_visits: int) -> None:
    """Append ``tid`` with the streams the encoder would give it: a gap token opens the next visit (order,
    segment) and advances days and age; a [VS] right after one stays in that visit; codes and [VE] stay put."""
    from ehrdebug.models.cehr_inputs import TOKEN_TYPES

    kind = kinds.kind(tid)
    order, day, age = feature["position_ids"][-1], feature["time_values"][-1], feature["age_values"][-1]
    prev = kinds.kind(feature["input_ids"][-1])
    if kind == "time" or (kind == "visit_start" and prev != "time"):
        order = min(order + 1, max_visits - 1) if max_visits else order + 1
    if kind == "time":
        gap = _gap_days(kinds.tokens.get(tid, ""))
        day, age = day + gap, age + gap / 365.25
    segment = 1 + (order - 1) % 2 if order > 0 else 0
    values = {"input_ids": tid, "attention_mask": 1, "token_type_ids": TOKEN_TYPES.get(kind, TOKEN_TYPES["code"]),
              "segment_ids": segment, "position_ids": order, "special_tokens_mask": int(kind != "code"),
              "time_values": day, "age_values": age}  # fmt: skip
    for key, value in values.items():
        feature[key].append(value)


def continue_timelines(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], layout: Layout, *,
                       max_new_tokens: int = 24, do_sample: bool = True, temperature: float = 1.0,
                       top_k: int | None = None, seed: int = 0) -> Continued:  # fmt: skip
    """Each timeline cut after a visit end, continued token by token (one batched forward pass per step)."""
    import torch

    from ehrdebug.models.cehr_inputs import FLOAT_KEYS, INT_KEYS

    kinds = Kinds(tokenizer)
    features = []
    for f in encode_all(tokenizer, records, layout, model):
        cut = cut_prompt(f, kinds)
        if cut is not None:
            features.append({k: list(f[k][:cut]) for k in (*INT_KEYS, *FLOAT_KEYS)})
    prompts = [list(f["input_ids"]) for f in features]
    visits = int(getattr(model.config, "max_visits", 0) or 0)
    generator = torch.Generator().manual_seed(seed)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        for _ in range(max_new_tokens if features else 0):
            logp = forward_logp(model, features)
            last = torch.tensor([len(f["input_ids"]) - 1 for f in features])
            scores = logp[torch.arange(len(features)), last] / max(temperature, 1e-6)
            if top_k:
                cut = torch.topk(scores, min(top_k, scores.shape[-1])).values[:, -1:]
                scores = scores.masked_fill(scores < cut, float("-inf"))
            picked = (
                torch.multinomial(scores.softmax(-1), 1, generator=generator)[:, 0]
                if do_sample
                else scores.argmax(-1)
            )
            for f, tid in zip(features, picked.tolist(), strict=True):
                _extend(f, int(tid), kinds, visits)
    finally:
        model.train(was_training)
    settings = {"do_sample": do_sample, "temperature": temperature, "top_k": top_k, "max_new_tokens": max_new_tokens,
                "seed": seed, "prompt": "each timeline up to the [VE] closing its second-to-last visit",
                "streams": "extended by the encoder's rules (a gap token opens the next visit and advances days/age)"}  # fmt: skip
    return Continued(
        prompts, [f["input_ids"][len(p) :] for f, p in zip(features, prompts, strict=True)], settings
    )


def judge_continuation(prompt: Sequence[int], ids: Sequence[int], kinds: Kinds,
                       known_codes: set[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Grammar (what may follow what), never-generated tokens, codes known to the tokenizer (and to the data's
    code list when given), and a repetition loop; ``valid`` when the grammar holds throughout."""
    from probes.degeneration import repetition_loop

    prev = kinds.kind(prompt[-1]) if prompt else "visit_end"
    problem, codes, known, broken = None, 0, 0, 0
    for pos, tid in enumerate(ids):
        kind = kinds.kind(tid)
        if kind in NEVER or kind not in FOLLOWS.get(prev, set()):
            broken += 1
            problem = problem or f"{kinds.tokens.get(tid, tid)} after {prev} (token {pos + 1})"
        if kind == "code":
            codes += 1
            token = kinds.tokens.get(tid, "")
            known += known_codes is None or token in known_codes
        prev = kind
    text = " ".join(kinds.tokens.get(t, "?") for t in ids)
    return {"valid": problem is None, "problem": problem, "codes": codes, "known_codes": known, "violations": broken,
            "loop": repetition_loop(text), "text": text}  # fmt: skip


def illegal_mass(scored: Scored, kinds: Kinds) -> list[float]:
    """Teacher-forced, at each real position: the mass on next tokens the grammar forbids after this one — the
    violation rate per token that sampling from data-like contexts should show."""
    import torch

    allowed: dict[str, Any] = {}
    for prev, ok in FOLLOWS.items():
        mask = torch.zeros(len(kinds.of), dtype=torch.bool)
        for tid, kind in kinds.of.items():
            if kind in ok and kind not in NEVER and tid < len(mask):
                mask[tid] = True
        allowed[prev] = mask
    out = []
    for row, t, _, _, _ in scored.positions:
        mask = allowed.get(kinds.kind(scored.features[row]["input_ids"][t]))
        if mask is not None:
            probs = scored.logp[row][t].exp()
            out.append(1.0 - float(probs[: len(mask)][mask].sum()))
    return out


def timeline_tf_vs_sampling(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], layout: Layout, *,
                            continued: Continued | None = None, code_vocabulary: set[str] | None = None,
                            max_records: int = 16, decoding_source: str = "") -> list[Finding]:  # fmt: skip
    """Teacher-forced figures (accuracy, fixed-slot mass, mass on grammar-breaking tokens) against the valid share of
    free-running continuations: a gap beyond what teacher forcing predicts is drift, else per-step weakness."""
    from ehrdebug.codetok import code_token
    from probes.intervals import wilson_interval

    records = list(records)[:max_records]
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        scored = teacher_force(model, tokenizer, records, layout)
    finally:
        model.train(was_training)
    kinds = Kinds(tokenizer)
    tf_acc = mean([float(rank == 1) for _, _, _, _, rank in scored.positions])
    tf_struct = mean(fixed_slot_mass(scored, kinds))  # the grammar, one step at a time
    tf_illegal = mean(illegal_mass(scored, kinds))
    gen = continued or continue_timelines(model, tokenizer, records, layout)
    known = {code_token(c) for c in code_vocabulary} if code_vocabulary else None
    judged = [judge_continuation(p, ids, kinds, known) for p, ids in zip(gen.prompts, gen.ids, strict=True)]
    n = len(judged)
    if not n:
        return [Finding(GENERATION, Severity.INFO, "no timeline has a visit end to continue from",
                        rule="needs code records with at least one visit")]  # fmt: skip
    valid = sum(j["valid"] for j in judged) / n
    codes = sum(j["codes"] for j in judged)
    code_rate = sum(j["known_codes"] for j in judged) / codes if codes else 1.0
    low, high = wilson_interval(valid, n)
    rate = sum(j["violations"] for j in judged) / max(1, sum(map(len, gen.ids)))
    pads = sum(t == kinds.pad for ids in gen.ids for t in ids) / max(1, sum(map(len, gen.ids)))
    length = sum(map(len, gen.ids)) / n
    expected = (
        1 - tf_illegal
    ) ** length  # valid share if each step broke the grammar as often as teacher-forced
    reasons = Counter(j["problem"].split(" (token")[0] for j in judged if j["problem"])
    evidence: dict[str, Any] = {"n": n, "timelines_teacher_forced": len(scored.features), "tf_token_accuracy": round(tf_acc, 4),
                                "tf_fixed_slot_mass": round(tf_struct, 4), "tf_illegal_mass_per_token": round(tf_illegal, 4),
                                "violations_per_100_tokens": round(100 * rate, 2), "expected_valid_from_tf": round(expected, 4),
                                "structurally_valid": round(valid, 4), "pad_generated_share": round(pads, 4),
                                "valid_share_95ci": [round(low, 3), round(high, 3)], "codes_generated": codes,
                                "valid_code_rate": round(code_rate, 4), "code_list": "the data's codes.txt" if known else "the tokenizer's vocabulary",
                                "loops": round(sum(bool(j["loop"]) for j in judged) / n, 4),
                                "invalid_reasons": [{"what": w, "count": c} for w, c in reasons.most_common(5)],
                                "decoding": gen.settings, "decoding_source": decoding_source or "the probe's timeline sampler", "layout": vars(layout)}  # fmt: skip
    examples = [{"prompt_tail": " ".join(kinds.tokens.get(t, "?") for t in p[-8:]), "continuation": j["text"],
                 **({"problem": j["problem"]} if j["problem"] else {})} for p, j in list(zip(gen.prompts, judged, strict=True))[:4]]  # fmt: skip
    how = f"{'sampling' if gen.settings.get('do_sample') else 'greedy'}, {gen.settings.get('max_new_tokens')} tokens, n={n}"
    figures = (f"teacher-forced the model puts {tf_illegal:.1%} of each step's mass on grammar-breaking tokens "
               f"(expect ~{expected:.0%} valid), {100 * rate:.1f} violations per 100 generated tokens")  # fmt: skip
    drift = valid < 0.5 and rate > 3 * max(tf_illegal, 0.01)
    padding = (
        ["mask-padding-in-loss"] if pads >= 0.05 else []
    )  # timelines that continue into [PAD]: pad labels
    if drift:
        return [Finding(GENERATION, Severity.FAIL, f"only {valid:.0%} of {n} continued timelines keep the visit/time grammar, "
                        f"far below what teacher forcing predicts: {figures} ({how}); the model drifts once it reads its own output",
                        evidence, examples, padding or (["early-stopping"] if tf_struct >= 0.7 else ["train-longer"]),
                        rule="fail when under 50% are valid and free-running violations exceed 3x the teacher-forced illegal mass")]  # fmt: skip
    if valid < 0.8 or code_rate < 0.8:
        return [Finding(GENERATION, Severity.WARN, f"{valid:.0%} of {n} continued timelines keep the visit/time grammar, "
                        f"{code_rate:.0%} of {codes} generated codes known ({how}); {figures}", evidence, examples,
                        padding or (["train-longer"] if tf_illegal > 0.01 else ["lower-temperature"]),
                        rule="warn when under 80% of continuations are valid or under 80% of generated codes are known")]  # fmt: skip
    return [
        Finding(
            GENERATION,
            Severity.OK,
            f"{valid:.0%} of {n} continued timelines keep the visit/time grammar, {code_rate:.0%} "
            f"of {codes} codes known ({how}); {figures}",
            evidence,
            examples[:2],
            rule="fail: < 50% valid with violations > 3x the teacher-forced illegal mass; warn: < 80% valid or known",
        )
    ]
