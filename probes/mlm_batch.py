"""data.mlm_batch: read real masked-LM batches and check what carries loss and what the model sees.

Everything is measured on the tensors a collator returned: which label value means "no target" (the
original BEHRT code writes -1, HF losses ignore only -100), what share of the maskable codes carry a
label against the configured rate, whether [CLS]/[SEP]/[PAD]/visit separators are ever targets, and
how the selected inputs were replaced (BERT's 80% [MASK] / 10% random / 10% unchanged).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import as_array, batch_list, rounded, special_ids_from_tokenizer

PROBE = "data.mlm_batch"
HF_IGNORE = -100
# a constant label value on at least this share of real positions is the collator's "no target" value
CONSTANT_SHARE = 0.5
# masking rates BERT and BEHRT use; a measured rate outside is reported even when the config asks for it
USUAL_RATE = (0.10, 0.25)
# relative gap between measured and configured rate that counts as "far" (besides 3 binomial SEs)
RATE_REL_TOL = 0.3
MIN_TARGETS_FOR_SPLIT = 30


def _names(special: Mapping[str, int]) -> dict[int, str]:
    return {tid: name for name, tid in special.items()}


def _resolve(tokenizer: Any, special_ids: Mapping[str, int] | Collection[int] | None, mask_token_id: int | None,
             pad_token_id: int | None, vocab_size: int | None) -> tuple[dict[int, str], int | None, int | None, int | None]:
    names: dict[int, str] = {}
    if tokenizer is not None:
        names.update(_names(special_ids_from_tokenizer(tokenizer)))
        # [UNK] stands in for a rare code at a code position: a legitimate target, not a structural token
        names.pop(getattr(tokenizer, "unk_token_id", None), None)
        mask_token_id = mask_token_id if mask_token_id is not None else getattr(tokenizer, "mask_token_id", None)
        pad_token_id = pad_token_id if pad_token_id is not None else getattr(tokenizer, "pad_token_id", None)
        vocab_size = vocab_size if vocab_size is not None else len(tokenizer)
    if isinstance(special_ids, Mapping):
        names.update(_names(dict(special_ids)))
    elif special_ids is not None:
        names.update({int(t): f"id {int(t)}" for t in special_ids if int(t) not in names})
    for tid, name in ((mask_token_id, "mask"), (pad_token_id, "pad")):
        if tid is not None and tid not in names:
            names[int(tid)] = f"[{name} id {tid}]"
    return names, mask_token_id, pad_token_id, vocab_size


def _no_target_value(labels, real, ignore_index: int) -> tuple[int | None, float, list[tuple[int, int]]]:
    """The label value that marks "no target": the loss's ignore index when present, else a constant that
    covers most real positions (-1, the pad id ...); None when labels have no such constant."""
    import numpy as np

    values, counts = np.unique(labels[real], return_counts=True)
    top = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda vc: -vc[1])[:6]
    total = int(counts.sum()) or 1
    if (labels == ignore_index).any():
        return ignore_index, float((labels[real] == ignore_index).sum()) / total, top
    if top and top[0][1] / total >= CONSTANT_SHARE:
        return int(top[0][0]), top[0][1] / total, top
    return None, 0.0, top


def _rows(batches: Sequence[Mapping[str, Any]], pad_token_id: int | None):
    """(batch index, input_ids, labels, attention) per batch as 2-D integer arrays."""
    import numpy as np

    for n, batch in enumerate(batches):
        if "input_ids" not in batch or "labels" not in batch:
            from ehrdebug.errors import UserError

            raise UserError(f"batch {n} has no {'input_ids' if 'input_ids' not in batch else 'labels'}: "
                            f"keys are {', '.join(map(str, batch))}")
        ids = np.atleast_2d(as_array(batch["input_ids"])).astype(np.int64)
        labels = np.atleast_2d(as_array(batch["labels"])).astype(np.int64)
        if labels.shape != ids.shape:
            from ehrdebug.errors import UserError

            raise UserError(f"batch {n}: labels {labels.shape} and input_ids {ids.shape} differ in shape")
        if batch.get("attention_mask") is not None:
            attention = np.atleast_2d(as_array(batch["attention_mask"])).astype(bool)
        elif pad_token_id is not None:
            attention = ids != pad_token_id
        else:
            attention = np.ones_like(ids, dtype=bool)
        yield n, ids, labels, attention


def probe_mlm_batch(
    batches: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    tokenizer: Any = None,
    *,
    special_ids: Mapping[str, int] | Collection[int] | None = None,
    mask_token_id: int | None = None,
    pad_token_id: int | None = None,
    vocab_size: int | None = None,
    mlm_probability: float = 0.15,
    loss_ignore_index: int = HF_IGNORE,
    replace_probs: tuple[float, float, float] = (0.8, 0.1, 0.1),
    subject: str = "",
) -> list[Finding]:
    """Check masked-LM batches (``input_ids``, ``labels``, ``attention_mask``) from the run's collator.

    ``tokenizer`` (or ``special_ids``/``mask_token_id``/``pad_token_id``) says which ids are structural;
    ``mlm_probability`` is the configured masking rate; ``loss_ignore_index`` the label value the model's
    loss skips (-100 for transformers models).
    """
    import numpy as np

    items = batch_list(batches)
    if not items:
        return [Finding(PROBE, Severity.INFO, "no MLM batches to check", subject=subject)]
    names, mask_id, pad_id, vocab = _resolve(tokenizer, special_ids, mask_token_id, pad_token_id, vocab_size)
    if mask_id is None:
        from ehrdebug.errors import UserError

        raise UserError("data.mlm_batch needs the mask token id (a tokenizer with [MASK] or mask_token_id=)")
    rows = list(_rows(items, pad_id))
    all_labels = np.concatenate([lab.reshape(-1) for _, _, lab, _ in rows])
    all_real = np.concatenate([att.reshape(-1) for _, _, _, att in rows])
    no_target, no_target_share, top_values = _no_target_value(all_labels, all_real, loss_ignore_index)
    special = np.array(sorted(names), dtype=np.int64)
    counts: Counter[str] = Counter()
    special_hits: Counter[str] = Counter()
    examples: dict[str, list[dict[str, Any]]] = {"padding": [], "special": [], "unchanged": []}
    for n, ids, labels, real in rows:
        target = labels != no_target if no_target is not None else labels >= 0
        original = np.where(target, labels, ids)
        is_special = np.isin(original, special)
        maskable = real & ~is_special
        chosen = target & maskable
        counts["positions"] += ids.size
        counts["real"] += int(real.sum())
        counts["maskable"] += int(maskable.sum())
        counts["targets"] += int(target.sum())
        counts["chosen"] += int(chosen.sum())
        counts["padding_targets"] += int((target & ~real).sum())
        counts["special_targets"] += int((target & real & is_special).sum())
        counts["as_mask"] += int((chosen & (ids == mask_id)).sum())
        counts["unchanged"] += int((chosen & (ids == original)).sum())
        random = chosen & (ids != mask_id) & (ids != original)
        counts["random"] += int(random.sum())
        counts["random_special"] += int((random & np.isin(ids, special)).sum())
        for r, j in zip(*np.nonzero(target & real & is_special), strict=True):
            name = names.get(int(original[r, j]), str(int(original[r, j])))
            special_hits[name] += 1
            if len(examples["special"]) < 5:
                examples["special"].append({"batch": n, "row": int(r), "position": int(j), "token": name,
                                            "label": int(labels[r, j])})
        for r, j in zip(*np.nonzero(target & ~real), strict=True):
            if len(examples["padding"]) < 5:
                examples["padding"].append({"batch": n, "row": int(r), "position": int(j), "label": int(labels[r, j])})
        for r, j in zip(*np.nonzero(chosen & (ids == original)), strict=True):
            if len(examples["unchanged"]) < 5:
                examples["unchanged"].append({"batch": n, "row": int(r), "position": int(j), "input": int(ids[r, j]),
                                              "label": int(labels[r, j])})
    base = {"batches": len(rows), "positions": counts["positions"], "real_positions": counts["real"],
            "maskable_positions": counts["maskable"], "labelled_positions": counts["targets"],
            "label_values_top": [{"value": v, "count": c} for v, c in top_values]}
    findings: list[Finding] = []
    findings += _ignore_index(no_target, no_target_share, loss_ignore_index, pad_id, all_labels, base, subject)
    findings += _placement(counts, special_hits, examples, base, subject)
    findings += _rate(counts, mlm_probability, base, subject)
    findings += _replacement(counts, replace_probs, examples["unchanged"], vocab, base, subject)
    if not findings:
        rate = counts["chosen"] / max(counts["maskable"], 1)
        findings.append(Finding(
            PROBE, Severity.OK,
            f"MLM batches look right: {rate:.1%} of maskable codes labelled (configured {mlm_probability:.0%}), "
            f"ignore index {loss_ignore_index}, no special token or padding labelled, "
            f"{counts['as_mask'] / max(counts['chosen'], 1):.0%}/{counts['random'] / max(counts['chosen'], 1):.0%}/"
            f"{counts['unchanged'] / max(counts['chosen'], 1):.0%} mask/random/unchanged",
            evidence={**base, "measured_rate": rounded(rate), "configured_rate": mlm_probability,
                      "replacement": _shares(counts)},
            subject=subject,
        ))
    return findings


def _shares(counts: Counter[str]) -> dict[str, float]:
    chosen = max(counts["chosen"], 1)
    return {"mask": rounded(counts["as_mask"] / chosen), "random": rounded(counts["random"] / chosen),
            "unchanged": rounded(counts["unchanged"] / chosen), "targets": counts["chosen"]}


def _ignore_index(no_target: int | None, share: float, ignore: int, pad_id: int | None, labels, base: dict[str, Any],
                  subject: str) -> list[Finding]:
    import numpy as np

    findings: list[Finding] = []
    stray = sorted(int(v) for v in np.unique(labels[(labels < 0) & (labels != ignore)]))
    if no_target is not None and no_target != ignore:
        what = ("[PAD]" if no_target == pad_id else f"id {no_target}") if no_target >= 0 else str(no_target)
        effect = (f"cross-entropy with ignore_index={ignore} raises 'Target {no_target} is out of bounds' (or, on "
                  "CUDA, a device-side assert)" if no_target < 0 else
                  f"the loss trains the model to predict {what} at every unmasked position")
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"labels mark 'no target' with {no_target} on {share:.0%} of real positions, not {ignore}: {effect}",
            evidence={**base, "no_target_value": no_target, "no_target_share": rounded(share),
                      "loss_ignore_index": ignore, "share_of_ignore_index": 0.0},
            examples=[f"label value {v}: {c} positions" for v, c in
                      ((d["value"], d["count"]) for d in base["label_values_top"][:3])],
            rule=f"a constant label value on ≥ {CONSTANT_SHARE:.0%} of real positions is the collator's 'no target' "
                 f"marker; the model's loss skips only {ignore}",
            recipes=["mlm-ignore-index"], subject=subject,
        ))
    elif stray:
        findings.append(Finding(
            PROBE, Severity.FAIL, f"labels hold negative values {stray[:5]} besides the ignore index {ignore}",
            evidence={**base, "negative_values": stray[:10], "loss_ignore_index": ignore},
            rule="a negative label other than the ignore index is out of bounds for cross-entropy",
            recipes=["mlm-ignore-index"], subject=subject,
        ))
    return findings


def _placement(counts: Counter[str], special_hits: Counter[str], examples: dict[str, list[dict[str, Any]]],
               base: dict[str, Any], subject: str) -> list[Finding]:
    findings: list[Finding] = []
    if counts["padding_targets"]:
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"{counts['padding_targets']} padding positions carry a label: padding is part of the loss",
            evidence={**base, "padding_targets": counts["padding_targets"],
                      "share_of_labels": rounded(counts["padding_targets"] / max(counts["targets"], 1))},
            examples=examples["padding"], rule="positions with attention_mask 0 must carry no label",
            recipes=["mlm-skip-special-tokens"], subject=subject,
        ))
    if counts["special_targets"]:
        share = counts["special_targets"] / max(counts["targets"] - counts["padding_targets"], 1)
        findings.append(Finding(
            PROBE, Severity.WARN,
            f"{counts['special_targets']} labels ({share:.1%} of labelled real positions) sit on special tokens: "
            + ", ".join(f"{k} ×{v}" for k, v in special_hits.most_common(4)),
            evidence={**base, "special_targets": counts["special_targets"], "share_of_labels": rounded(share),
                      "by_token": dict(special_hits.most_common())},
            examples=examples["special"],
            rule="[CLS], [SEP], [PAD], [MASK] and visit separators are never MLM targets (special-tokens mask); "
                 "predicting them is free accuracy that hides how well codes are learned",
            recipes=["mlm-skip-special-tokens"], subject=subject,
        ))
    return findings


def _rate(counts: Counter[str], configured: float, base: dict[str, Any], subject: str) -> list[Finding]:
    n = counts["maskable"]
    if not n:
        return [Finding(PROBE, Severity.WARN, "no maskable positions: every real token is a special token",
                        evidence=base, subject=subject)]
    rate = counts["chosen"] / n
    se = math.sqrt(max(configured * (1 - configured), 1e-9) / n)
    tolerance = max(3 * se, RATE_REL_TOL * configured)
    evidence = {**base, "measured_rate": rounded(rate), "configured_rate": configured, "tolerance": rounded(tolerance),
                "labelled_maskable": counts["chosen"]}
    if counts["chosen"] == 0:
        return [Finding(PROBE, Severity.FAIL, f"no maskable position carries a label in {n} positions: nothing to learn",
                        evidence=evidence, rule="an MLM batch needs targets", recipes=["mlm-masking-rate"],
                        subject=subject)]
    findings: list[Finding] = []
    if abs(rate - configured) > tolerance:
        far = rate >= 2 * configured or rate <= configured / 2
        findings.append(Finding(
            PROBE, Severity.FAIL if far else Severity.WARN,
            f"the collator labels {rate:.1%} of maskable codes, the config asks for {configured:.0%}",
            evidence=evidence,
            rule=f"measured rate outside configured ± max(3 binomial SEs, {RATE_REL_TOL:.0%} of it); "
                 "a factor of 2 either way is a failure",
            recipes=["mlm-masking-rate"], subject=subject,
        ))
    low, high = USUAL_RATE
    if not low <= rate <= high and abs(rate - 0.15) > 3 * math.sqrt(0.15 * 0.85 / n):
        hidden = "most of each record is hidden, so little context is left to predict from" if rate > high else \
            "few targets per batch: pretraining learns slowly"
        findings.append(Finding(
            PROBE, Severity.WARN,
            f"{rate:.1%} of maskable codes are masked, outside the {low:.0%}–{high:.0%} BERT/BEHRT use: {hidden}",
            evidence={**evidence, "usual_range": list(USUAL_RATE)},
            rule=f"a measured masking rate outside {low:.0%}–{high:.0%} (beyond 3 SEs of 15%)",
            recipes=["mlm-masking-rate"], subject=subject,
        ))
    return findings


def _replacement(counts: Counter[str], probs: tuple[float, float, float], unchanged: list[dict[str, Any]],
                 vocab: int | None, base: dict[str, Any], subject: str) -> list[Finding]:
    n = counts["chosen"]
    if n < MIN_TARGETS_FOR_SPLIT:
        return [Finding(PROBE, Severity.INFO, f"only {n} labelled codes: too few to judge the 80/10/10 replacement",
                        evidence={**base, "labelled_maskable": n, "needed": MIN_TARGETS_FOR_SPLIT}, subject=subject)]
    shares = _shares(counts)
    tol = {k: 3 * math.sqrt(p * (1 - p) / n) + 0.02 for k, p in zip(("mask", "random", "unchanged"), probs, strict=True)}
    expected = dict(zip(("mask", "random", "unchanged"), probs, strict=True))
    evidence = {**base, "replacement": shares, "expected": expected, "tolerance": {k: rounded(v) for k, v in tol.items()},
                "random_replacements_that_are_special": counts["random_special"]}
    if vocab is not None:
        evidence["vocab_size"] = vocab
    off = {k: shares[k] for k in expected if abs(shares[k] - expected[k]) > tol[k]}
    if not off:
        return []
    if shares["unchanged"] >= 0.5:
        return [Finding(
            PROBE, Severity.FAIL,
            f"{shares['unchanged']:.0%} of labelled positions show their own answer in the input: the targets are not hidden",
            evidence=evidence, examples=unchanged,
            rule="input equal to the label on most labelled positions: the model copies instead of predicting",
            recipes=["mlm-80-10-10"], subject=subject,
        )]
    detail = ", ".join(f"{k} {shares[k]:.0%} (expected {expected[k]:.0%})" for k in off)
    why = (" — every target is [MASK], so the encoder never learns to represent the real codes it sees at fine-tuning"
           if shares["mask"] > 0.95 else "")
    return [Finding(
        PROBE, Severity.WARN, f"no 80/10/10 replacement: {detail}{why}",
        evidence=evidence,
        rule="share of labelled inputs that are [MASK] / a random id / unchanged vs 80/10/10, each within 3 binomial "
             "SEs + 2 points",
        recipes=["mlm-80-10-10"], subject=subject,
    )]
