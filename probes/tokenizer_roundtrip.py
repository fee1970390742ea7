"""tokenizer.roundtrip and tokenizer.lengths: does the text survive, and does it fit.

Round-trip: ``decode(encode(x)) == x`` on the sample; failures are sorted by cause (BERT uncased turns
``V3001`` into ``v3001``; T5 drops the ``<`` it cannot represent; WordPiece re-spaces punctuation).
A word-level vocabulary is judged per token (each word's id names the word again); its unknown words
are the codes probe's unknown rate, not a round-trip failure.
Lengths: the token-length distribution over every text, the share longer than ``max_length``, and
whether right truncation cuts off the end token (``<END>``), so the model never learns to stop.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.tokenizers import TokenizerHandle
from probes.tokenizer_common import TokenizedData, pct, quantile

ROUNDTRIP = "tokenizer.roundtrip"
LENGTHS = "tokenizer.lengths"


def _squash(text: str) -> str:
    return "".join(text.split())


def changed_words(tok: TokenizerHandle, texts: list[str], limit: int = 5000) -> list[tuple[str, str, int]]:
    """Words that do not survive encode/decode on their own, most frequent first, codes (words with digits) first."""
    counts: Counter[str] = Counter()
    for text in texts[:20_000]:
        counts.update(text.split())
    words = [w for w, _ in counts.most_common(limit)]
    decoded = tok.backend.decode_batch([e.ids for e in tok.backend.encode_batch(words, add_special_tokens=False)],
                                       skip_special_tokens=False)
    bad = [(w, d.strip(), counts[w]) for w, d in zip(words, decoded, strict=True) if d.strip() != w]
    return sorted(bad, key=lambda x: (not any(c.isdigit() for c in x[0]), -x[2]))


def _cause(text: str, decoded: str, has_unk: bool) -> str:
    if has_unk:
        return "unknown token"
    if _squash(text) == _squash(decoded):
        return "spacing"
    if _squash(text).lower() == _squash(decoded).lower():
        return "lower-cased"
    return "changed text"


def _word_level_roundtrip(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig) -> list[Finding]:
    """Token-level: each word must come back as itself; unknown words are the codes probe's unknown rate, not a change."""
    changed: Counter[tuple[str, str]] = Counter()
    words = unknown = bad_texts = 0
    for text, enc in zip(data.sample, data.encodings, strict=True):
        bad = False
        for tid, (a, b) in zip(enc.ids, enc.offsets, strict=True):
            words += 1
            if tid == tok.unk_id:
                unknown += 1
                continue
            back = tok.backend.id_to_token(tid)
            if back != text[a:b]:
                changed[(text[a:b], str(back))] += 1
                bad = True
        bad_texts += bad
    n = len(data.sample)
    rate = 1 - bad_texts / n
    floor = config.threshold("roundtrip_min")
    evidence: dict[str, Any] = {"round_trip_rate": round(rate, 4), "texts_checked": n, "words_checked": words,
                                "unknown_words": unknown, "words_changed": sum(changed.values()),
                                "lowercases": tok.lowercases, "family": tok.family, "judged": "per token (word-level vocabulary)"}
    rule = f"warn when fewer than {pct(floor)} of texts bring every in-vocabulary word back unchanged"
    examples = [f"{w!r} → {d!r} ({k:,}×)" for (w, d), k in changed.most_common(5)]
    if rate >= floor:
        note = f"; {unknown:,} unknown words are counted by tokenizer.codes" if unknown else ""
        return [Finding(ROUNDTRIP, Severity.OK, f"{pct(rate)} of {n:,} texts bring every vocabulary word back unchanged{note}",
                        evidence=evidence, examples=examples, rule=rule, subject=tok.name)]
    cause = "lower-cased" if all(w.lower() == d for w, d in changed) else "changed text"
    title = f"only {pct(rate)} of texts bring every vocabulary word back ({cause}): {examples[0]}"
    return [Finding(ROUNDTRIP, Severity.WARN, title, evidence=evidence, examples=examples, recipes=["use-fast-tokenizer"],
                    rule=rule, subject=tok.name)]


def probe_roundtrip(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig) -> list[Finding]:
    if not data.sample:
        return [Finding(ROUNDTRIP, Severity.OK, "no texts to round-trip", subject=tok.name)]
    if tok.word_level:
        return _word_level_roundtrip(tok, data, config)
    ids = [e.ids for e in data.encodings]
    decoded = tok.backend.decode_batch(ids, skip_special_tokens=False)
    causes: Counter[str] = Counter()
    examples: list[str] = []
    unk = tok.unk_id
    failed: list[str] = []
    for text, dec, seq in zip(data.sample, decoded, ids, strict=True):
        if dec == text:
            continue
        cause = _cause(text, dec, unk is not None and unk in seq)
        causes[cause] += 1
        failed.append(text)
        if len(examples) < 3:
            examples.append(f"{cause}: {text[:90]!r} → {dec[:90]!r}")
    n = len(data.sample)
    rate = 1 - sum(causes.values()) / n
    floor = config.threshold("roundtrip_min")
    evidence: dict[str, Any] = {"round_trip_rate": round(rate, 4), "texts_checked": n, "failures_by_cause": dict(causes),
                                "lowercases": tok.lowercases, "family": tok.family}
    rule = f"warn when fewer than {pct(floor)} of texts decode back exactly"
    if rate >= floor:
        return [Finding(ROUNDTRIP, Severity.OK, f"{pct(rate)} of {n:,} texts decode back exactly", evidence=evidence,
                        examples=examples, rule=rule, subject=tok.name)]
    changed = changed_words(tok, failed)
    evidence["words_changed"] = [f"{w!r} → {d!r} ({k:,}×)" for w, d, k in changed[:8]]
    main = causes.most_common(1)[0][0]
    sev = Severity.FAIL if main == "unknown token" else Severity.WARN
    worst = f"{changed[0][0]!r} → {changed[0][1]!r}" if changed else main
    title = f"only {pct(rate)} of texts decode back exactly ({main}): {worst}"
    recipes = ["use-fast-tokenizer"] + (["register-structural-tokens"] if main == "unknown token" else [])
    return [Finding(ROUNDTRIP, sev, title, evidence=evidence, examples=examples, recipes=recipes, rule=rule, subject=tok.name)]


def end_token_of(config: EhrDebugConfig, structural: list[str]) -> tuple[str, str]:
    if config.end_token:
        return config.end_token, "configured"
    for token in structural:
        if "end" in token.lower() or token in ("</s>", "[SEP]"):
            return token, "guessed from the structural tokens"
    return "", ""


def _end_token_lost(tok: TokenizerHandle, texts: list[str], end_token: str, keep: int) -> tuple[int, int, list[str]]:
    """Of the truncated ``texts`` holding ``end_token``: how many lose it under right truncation to ``keep`` pieces."""
    holding = [t for t in texts if end_token in t]
    lost = 0
    examples: list[str] = []
    for text, enc in zip(holding, tok.backend.encode_batch(holding, add_special_tokens=False), strict=True):
        at = text.rfind(end_token)
        kept_end = enc.offsets[keep - 1][1] if 0 < keep <= len(enc.offsets) else 0
        if kept_end < at + len(end_token):  # cut before it or through it
            lost += 1
            if len(examples) < 3:
                examples.append(f"{len(enc):,} pieces, cut after {text[max(0, kept_end - 30):kept_end]!r}; {end_token!r} at char {at:,} is lost")
    return len(holding), lost, examples


def probe_lengths(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig, structural: list[str] | None = None) -> list[Finding]:
    lengths = sorted(data.lengths)
    n = len(lengths)
    if not n:
        return [Finding(LENGTHS, Severity.OK, "no texts to measure", subject=tok.name)]
    max_len = config.max_length
    over = [i for i, k in enumerate(data.lengths) if k > max_len]
    share = len(over) / n
    end_token, how = end_token_of(config, structural or [])
    evidence: dict[str, Any] = {
        "sequences": n, "mean": round(sum(lengths) / n, 2), "p50": quantile(lengths, 0.5), "p95": quantile(lengths, 0.95),
        "p99": quantile(lengths, 0.99), "max": lengths[-1], "max_length": max_len, "truncated": len(over),
        "truncated_share": round(share, 5),
    }
    examples: list[str] = []
    lost_share = 0.0
    if end_token and over:
        specials = tok.backend.num_special_tokens_to_add(False)
        checked = [data.texts[i] for i in over[:10_000]]
        holding, lost, examples = _end_token_lost(tok, checked, end_token, max_len - specials)
        evidence.update(end_token=end_token, end_token_source=how, truncated_checked=len(checked),
                        truncated_with_end_token=holding, end_token_cut_off=lost)
        lost_share = (lost / len(checked)) * share if checked else 0.0
    elif end_token:
        evidence.update(end_token=end_token, end_token_source=how, end_token_cut_off=0)
    warn_at = config.threshold("truncated_warn")
    rule = f"warn when more than {pct(warn_at)} of sequences exceed max_length; fail when that many lose the end token"
    if lost_share > warn_at:
        sev = Severity.FAIL
        title = f"{pct(share)} of sequences exceed max_length={max_len}; truncation cuts off {end_token!r} in {evidence['end_token_cut_off']:,} of them"
    elif share > warn_at:
        sev, title = Severity.WARN, f"{pct(share)} of sequences exceed max_length={max_len} (p95 {evidence['p95']:.0f}, max {lengths[-1]:,})"
    else:
        sev, title = Severity.OK, f"{pct(1 - share)} of sequences fit max_length={max_len} (p95 {evidence['p95']:.0f}, max {lengths[-1]:,} tokens)"
    return [Finding(LENGTHS, sev, title, evidence=evidence, examples=examples,
                    recipes=["fix-truncation"] if sev > Severity.OK else [], rule=rule, subject=tok.name)]
