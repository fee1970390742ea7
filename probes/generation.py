"""generation.tf_vs_sampling: teacher-forced scores against free-running generation.

Seed 000 reached loss 0.0004 under teacher forcing while sampling (temperature 1.3, top-k 50) produced
``56 ASIAN M <demo> ASIAN m <demoing>``. On held-out examples this probe measures teacher-forced token
accuracy and loss, then generates under the configured decoding and scores the outputs: structural
validity under the EHR grammar, valid-code rate, exact match, and where the first divergence happens.
``generate_outputs`` is shared with the degeneration probe so the suite generates once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.grammar import DEMO, END, VISIT_OPEN, score_generations
from probes.degeneration import repetition_loop
from probes.intervals import wilson_interval
from probes.special_tokens import (
    code_timelines,
    end_token_ids,
    example_pair,
    first_content_position,
    is_seq2seq,
    model_device,
    piece,
    single_token_id,
    teacher_force,
)

PROBE = "generation.tf_vs_sampling"


@dataclass
class Generated:
    prompts: list[str]
    texts: list[str]  # decoded continuation, structural tokens kept, pad/bos/foreign EOS dropped
    ids: list[list[int]]  # generated ids (no decoder start; a decoder prefix it was given is included)
    ended: list[bool]  # stopped on the dataset's end token (or the model EOS when that is the end token)
    stopped_on_foreign_eos: list[bool] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    prompted: bool = False  # the decoder was given the prompt as its prefix: texts are what it wrote after it


def decoding_kwargs(tokenizer: Any, config: EhrDebugConfig | None, generation_kwargs: dict[str, Any] | None,
                    max_new_tokens: int = 40) -> dict[str, Any]:
    """The user's decoding, completed so generation can stop on the data's end token or the model EOS."""
    kw = dict(generation_kwargs or {})
    end_id, foreign = end_token_ids(tokenizer, config)
    if "eos_token_id" not in kw:
        kw["eos_token_id"] = [i for i in (end_id, foreign) if i is not None] or None
    if "max_new_tokens" not in kw and "max_length" not in kw:
        kw["max_new_tokens"] = max_new_tokens
    kw.setdefault("pad_token_id", tokenizer.pad_token_id)
    if not kw.get("do_sample"):
        kw.setdefault("do_sample", False)
    return kw


def decoder_prefix(model: Any, tokenizer: Any, prompt: str) -> list[int]:
    """What a decoder that writes the whole line has been given before its first free step: the decoder start,
    then the prompt as a target (its trailing EOS dropped)."""
    ids = tokenizer(text_target=prompt)["input_ids"]
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return [model.config.decoder_start_token_id, *ids]


def generate_outputs(model: Any, tokenizer: Any, prompts: list[str], config: EhrDebugConfig | None = None,
                     generation_kwargs: dict[str, Any] | None = None, *, seed: int = 0,
                     decoder_prompt: bool = False) -> Generated:
    """Generate for each prompt under ``generation_kwargs``; with ``decoder_prompt`` (a seq2seq run whose
    decoder writes the whole line) the decoder starts from the prompt, as that run generates."""
    import torch

    kw = decoding_kwargs(tokenizer, config, generation_kwargs)
    end_id, foreign = end_token_ids(tokenizer, config)
    drop = {tokenizer.pad_token_id, tokenizer.bos_token_id, foreign} - {None}
    own_end = single_token_id(tokenizer, (config or EhrDebugConfig()).end_token or END)
    if end_id is not None and end_id == tokenizer.eos_token_id and own_end is None:
        drop.add(end_id)  # T5-style: the model's EOS stands in for the end token; it is not part of the text
    # when the dataset's own end token (<END>) is the tokenizer's EOS it stays: the grammar requires it
    device = model_device(model)
    was_training = getattr(model, "training", False)
    model.eval()
    texts, all_ids, ended, foreign_stop = [], [], [], []
    prompted = decoder_prompt and is_seq2seq(model)
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            for prompt in prompts:
                enc = tokenizer(prompt, return_tensors="pt").to(device)
                if not is_seq2seq(model) and enc["input_ids"][0, -1] == tokenizer.eos_token_id and enc["input_ids"].shape[1] > 1:
                    enc = {k: v[:, :-1] for k, v in enc.items()}
                given = decoder_prefix(model, tokenizer, prompt) if prompted else []
                extra = {"decoder_input_ids": torch.tensor([given], device=device)} if given else {}
                out = model.generate(**enc, **extra, **kw)[0].tolist()
                gen = out[1:] if is_seq2seq(model) else out[enc["input_ids"].shape[1]:]
                new = out[len(given):] if given else gen  # what the model wrote itself
                all_ids.append(gen)
                texts.append(" ".join(tokenizer.decode([t for t in new if t not in drop], skip_special_tokens=False).split()))
                ended.append(end_id is not None and end_id in new)
                foreign_stop.append(foreign is not None and foreign in new and (end_id not in new or new.index(foreign) < new.index(end_id)))
    finally:
        model.train(was_training)
    return Generated(list(prompts), texts, all_ids, ended, foreign_stop, kw, prompted)


def _divergence(tokenizer: Any, target_ids: list[int], gen_ids: list[int]) -> dict[str, Any] | None:
    skip = {tokenizer.bos_token_id, tokenizer.pad_token_id} - {None}
    tgt = [t for t in target_ids if t not in skip]
    gen = [t for t in gen_ids if t not in skip]
    for i, t in enumerate(tgt):
        if i >= len(gen) or gen[i] != t:
            return {"position": i, "expected": piece(tokenizer, t), "got": piece(tokenizer, gen[i]) if i < len(gen) else "(stopped)"}
    return None


def tf_vs_sampling(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    config: EhrDebugConfig | None = None,
    *,
    generation_kwargs: dict[str, Any] | None = None,
    code_vocabulary: set[str] | None = None,
    generated: Generated | None = None,
    max_examples: int = 8,
    decoding_source: str = "",
    decoder_prompt: bool = False,
) -> list[Finding]:
    """Teacher-forced accuracy/loss vs structural validity, code validity and exact match when free-running.

    The evidence states the sample size, a 95% interval on the valid share and the decoding settings used (and
    ``decoding_source``: where they came from), so two measurements of one run can be compared fairly.
    """
    cfg = config or EhrDebugConfig()
    if (timelines := code_timelines(model, tokenizer, examples)) is not None:  # a causal LM over code timelines
        from probes.timeline_generation import timeline_tf_vs_sampling
        from probes.timeline_lm import Layout

        return timeline_tf_vs_sampling(model, tokenizer, timelines, Layout(max_length=cfg.max_length or 256),
                                       code_vocabulary=code_vocabulary, max_records=max_examples)
    pairs = [example_pair(ex, cfg) for ex in examples[:max_examples]]
    if not pairs:
        return [Finding(PROBE, Severity.INFO, "no held-out examples to compare")]
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        tfs = [teacher_force(model, tokenizer, p, t) for p, t in pairs]
    finally:
        model.train(was_training)
    correct = total = 0
    for tf in tfs:
        start = first_content_position(tokenizer, tf.target_ids)
        pred = tf.probs.argmax(-1).tolist()
        correct += sum(int(p == t) for p, t in zip(pred[start:], tf.target_ids[start:], strict=True))
        total += len(tf.target_ids) - start
    tf_acc = correct / total if total else 0.0
    tf_loss = sum(tf.loss for tf in tfs) / len(tfs)
    gen = generated or generate_outputs(model, tokenizer, [p for p, _ in pairs], cfg, generation_kwargs,
                                        decoder_prompt=decoder_prompt)
    n = min(len(gen.texts), len(pairs))
    ehr = any(VISIT_OPEN in t for _, t in pairs)
    # the whole line the model produced: the prompt it was given (or the one before its continuation) + its text
    full = [g if DEMO in t and not gen.prompted else f"{p} {g}" for (p, t), g in zip(pairs[:n], gen.texts[:n], strict=True)]
    written = full if gen.prompted else gen.texts[:n]
    exact = sum(" ".join(g.split()) == " ".join(t.split()) for (_, t), g in zip(pairs[:n], written, strict=True)) / n
    divs = [d for tf, ids in zip(tfs[:n], gen.ids[:n], strict=True) if (d := _divergence(tokenizer, tf.target_ids, ids))]
    kw = {k: v for k, v in gen.kwargs.items() if k in DECODING_KEYS}
    if "eos_token_id" in kw:
        kw["eos_token"] = _pieces(tokenizer, kw.pop("eos_token_id"))
    evidence: dict[str, Any] = {"n": n, "decoding_source": decoding_source or "defaults completed by the probe",
                                "decoder_given_prompt": gen.prompted, "tf_token_accuracy": round(tf_acc, 4), "tf_loss": round(tf_loss, 4),
                                "exact_match": round(exact, 4), "decoding": kw,
                                "ended_on_end_token": round(sum(gen.ended[:n]) / n, 4),
                                "stopped_on_pretrained_eos": round(sum(gen.stopped_on_foreign_eos[:n]) / n, 4) if gen.stopped_on_foreign_eos else 0.0}
    if divs:
        pos = sorted(d["position"] for d in divs)
        expected = Counter(d["expected"] for d in divs).most_common(1)[0]
        got = Counter(d["got"] for d in divs).most_common(3)
        evidence["first_divergence"] = {"median_position": pos[len(pos) // 2], "diverged": len(divs),
                                        "expected_most_often": {"piece": expected[0], "count": expected[1]},
                                        "got_most_often": [{"piece": p, "count": c} for p, c in got]}
    examples_out = [{"prompt": p, "target": t, "generated": g, **({"divergence": d} if d else {})}
                    for (p, t), g, d in zip(pairs[:4], gen.texts[:4],
                                            [_divergence(tokenizer, tf.target_ids, ids) for tf, ids in zip(tfs[:4], gen.ids[:4], strict=False)],
                                            strict=False)]
    if ehr:
        score = score_generations(full, code_vocabulary)
        evidence.update({"structurally_valid": round(score.structurally_valid, 4), "valid_code_rate": round(score.valid_code_rate, 4),
                         "codes_generated": score.codes_generated, "invalid_reasons": [r for _, r in score.invalid_examples][:5],
                         "unknown_codes": score.unknown_codes[:8]})
        quality, what = score.structurally_valid, "structurally valid"
    else:
        quality, what = exact, "exact match"
    low, high = wilson_interval(quality, n)
    evidence["valid_share_95ci" if ehr else "exact_match_95ci"] = [round(low, 3), round(high, 3)]
    recipes = _recipes(gen, evidence)
    findings: list[Finding] = []
    if tf_acc >= 0.7 and quality < 0.5:
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"teacher-forced accuracy {tf_acc:.0%} but only {quality:.0%} {what} when generating ({_describe(kw)}, n={n})",
            evidence, examples_out, recipes or ["early-stopping"],
            rule="fail when teacher-forced token accuracy >= 70% while under 50% of free-running outputs are valid",
        ))
    elif quality < 0.8 or (ehr and code_vocabulary and evidence["valid_code_rate"] < 0.8 and evidence["codes_generated"]):
        trained = tf_acc >= 0.5
        findings.append(Finding(
            PROBE, Severity.WARN,
            f"{quality:.0%} {what} of {n} generations ({_describe(kw)}); teacher-forced accuracy {tf_acc:.0%}"
            + ("" if trained else " (the model has not learned the targets yet)")
            + (f"; valid-code rate {evidence['valid_code_rate']:.0%}" if ehr and code_vocabulary else ""),
            evidence, examples_out, recipes if trained else ["train-longer"],
            rule="warn when under 80% of generations are valid (or under 80% of generated codes are in the data's vocabulary)",
        ))
    if not findings:
        findings.append(Finding(PROBE, Severity.OK, f"{quality:.0%} {what} of {n} generations, teacher-forced accuracy {tf_acc:.0%} ({_describe(kw)})",
                                evidence, examples_out[:2], rule="fail: TF accuracy >= 70% with < 50% valid generations; warn: < 80% valid"))
    return findings


DECODING_KEYS = ("do_sample", "temperature", "top_k", "top_p", "num_beams", "repetition_penalty", "no_repeat_ngram_size",
                 "bad_words_ids", "eos_token_id", "max_new_tokens")


def _pieces(tokenizer: Any, ids: Any) -> Any:
    if isinstance(ids, (list, tuple)):
        return [piece(tokenizer, int(i)) for i in ids]
    return piece(tokenizer, int(ids)) if ids is not None else None


def _describe(kw: dict[str, Any]) -> str:
    if kw.get("num_beams", 1) and kw.get("num_beams", 1) > 1:
        return f"beam search, {kw['num_beams']} beams"
    if kw.get("do_sample"):
        return "sampling" + "".join(f", {k}={kw[k]}" for k in ("temperature", "top_k", "top_p") if k in kw)
    return "greedy"


def _recipes(gen: Generated, evidence: dict[str, Any]) -> list[str]:
    recipes = []
    if evidence.get("stopped_on_pretrained_eos", 0) >= 0.3:
        recipes.append("block-pretrained-eos")
    if gen.kwargs.get("do_sample") and float(gen.kwargs.get("temperature", 1.0) or 1.0) > 1.0:
        recipes.append("lower-temperature")
    if sum(bool(repetition_loop(t)) for t in gen.texts) >= max(1, len(gen.texts) // 3):
        recipes.append("anti-repetition-decoding")
    return recipes
