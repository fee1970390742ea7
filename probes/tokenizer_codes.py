"""tokenizer.codes: how medical codes fare in the vocabulary (seed 000: ``V3001`` → ``['V', '300', '1']``).

Per code system found in the data: pieces per code occurrence, share kept whole, pieces that are the
unknown token, the most fragmented frequent codes; then, measured by re-encoding the sample with the
top-N codes added as tokens, what that would change. Codes are encoded after a space, as they stand
in a sequence, because byte-level and SentencePiece vocabularies split differently there.
A word-level vocabulary (``ehrdebug.codetok``) cannot fragment a code: there the figure is the share of
code occurrences outside the vocabulary, reported as an unknown-token rate with the codes it hits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ehrdebug.codes import BUILTIN, CodeSystem, detect_systems, resolve_systems
from ehrdebug.config import EhrDebugConfig
from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Severity
from ehrdebug.tokenizers import TokenizerHandle
from probes.tokenizer_common import TokenizedData, pct, span_pieces, weighted_quantile

PROBE = "tokenizer.codes"
_PREFIX = "M "
TOP_N_SAMPLE = 10_000  # texts re-encoded to measure the effect of adding codes


def choose_systems(texts: Sequence[str], config: EhrDebugConfig) -> tuple[list[CodeSystem], str]:
    """Configured systems, else those detected in the texts (undotted ICD-9 is kept beside dotted ICD-9)."""
    if config.code_systems or config.custom_code_systems:
        try:
            return resolve_systems(config.code_systems, config.custom_code_systems), "configured"
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    sample = list(texts[:5000])
    custom = resolve_systems([], config.custom_code_systems)
    return detect_systems(sample, [*BUILTIN.values(), *custom]), "detected in the data"


def count_codes(texts: Sequence[str], systems: Sequence[CodeSystem]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {s.name: Counter() for s in systems}
    for system in systems:
        findall = system.regex.findall
        counter = counts[system.name]
        for text in texts:
            counter.update(findall(text))
    return counts


def code_pieces(tok: TokenizerHandle, codes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Pieces of each code after a space: ``{code: {"pieces": [...], "unk": n}}``."""
    out: dict[str, dict[str, Any]] = {}
    encs = tok.backend.encode_batch([_PREFIX + c for c in codes], add_special_tokens=False)
    start = len(_PREFIX)
    for code, enc in zip(codes, encs, strict=True):
        idx = span_pieces(enc, start, start + len(code))
        unk = sum(1 for i in idx if tok.unk_id is not None and enc.ids[i] == tok.unk_id)
        shown = [str(tok.unk_token) if tok.unk_id is not None and enc.ids[i] == tok.unk_id else enc.tokens[i] for i in idx]
        out[code] = {"pieces": shown, "unk": unk}
    return out


def _system_finding(tok: TokenizerHandle, system: CodeSystem, counts: Counter[str], pieces: dict[str, dict[str, Any]],
                    config: EhrDebugConfig, n_texts: int) -> Finding:
    total = sum(counts.values())
    n_pieces = {c: max(1, len(pieces[c]["pieces"])) for c in counts}
    piece_total = sum(n_pieces[c] * k for c, k in counts.items())
    unk_total = sum(pieces[c]["unk"] * k for c, k in counts.items())
    mean = piece_total / total
    single = sum(k for c, k in counts.items() if n_pieces[c] == 1 and not pieces[c]["unk"]) / total
    dist: Counter[str] = Counter()
    for c, k in counts.items():
        dist["5+" if n_pieces[c] >= 5 else str(n_pieces[c])] += k
    distribution = {key: round(dist[key] / total, 4) for key in sorted(dist, key=lambda s: int(s.rstrip("+")))}
    frequent = [c for c, _ in counts.most_common(50)]
    worst = sorted(frequent, key=lambda c: (-n_pieces[c], -counts[c]))[:8]
    unk_rate = unk_total / piece_total if piece_total else 0.0
    evidence: dict[str, Any] = {
        "occurrences": total,
        "distinct_codes": len(counts),
        "mean_pieces_per_code": round(mean, 3),
        "p95_pieces_per_code": weighted_quantile([n_pieces[c] for c in counts], list(counts.values()), 0.95),
        "single_token_share": round(single, 4),
        "pieces_distribution": distribution,
        "unknown_piece_rate": round(unk_rate, 4),
        "texts_sampled": n_texts,
    }
    examples = [f"{c} → {pieces[c]['pieces']} ({n_pieces[c]} pieces, seen {counts[c]:,}×)" for c in worst]
    warn_at = config.threshold("code_pieces_warn")
    unk_fail = config.threshold("unk_rate_fail")
    label = f"{system.name} codes"
    if unk_rate > unk_fail:
        sev, title = Severity.FAIL, f"{label}: {pct(unk_rate)} of their pieces are {tok.unk_token}"
    elif mean > warn_at:
        sev, title = Severity.WARN, f"{label} split into {mean:.2f} pieces on average; {pct(single)} stay whole"
    else:
        sev, title = Severity.OK, f"{label}: {mean:.2f} pieces per code, {pct(single)} stay whole"
    return Finding(
        PROBE, sev, title, evidence=evidence, examples=examples,
        recipes=["add-code-tokens"] if sev > Severity.OK else [],
        rule=f"warn when mean pieces per code > {warn_at:g}; fail when > {pct(unk_fail)} of code pieces are unknown",
        subject=tok.name,
    )


def _word_level_system_finding(tok: TokenizerHandle, system: str, counts: Counter[str],
                               pieces: dict[str, dict[str, Any]], n_texts: int) -> Finding:
    """A word-level vocabulary holds a code whole or not at all: the share of occurrences that are unknown."""
    total = sum(counts.values())
    missing = Counter({c: k for c, k in counts.items() if pieces[c]["unk"] or len(pieces[c]["pieces"]) != 1})
    unk = sum(missing.values())
    evidence: dict[str, Any] = {
        "occurrences": total, "distinct_codes": len(counts), "in_vocabulary_share": round(1 - unk / total, 4),
        "unknown_occurrence_rate": round(unk / total, 4), "distinct_unknown_codes": len(missing), "texts_sampled": n_texts,
    }
    label = f"{system} codes"
    rule = "word-level vocabulary: a code is one id or the unknown id; the overall unknown rate is judged once"
    if not unk:
        return Finding(PROBE, Severity.OK, f"{label}: all {total:,} occurrences ({len(counts):,} distinct) are vocabulary tokens",
                       evidence=evidence, rule=rule, subject=tok.name)
    examples = [f"{c} → {tok.unk_token} (seen {k:,}×)" for c, k in missing.most_common(8)]
    title = (f"{label}: {pct(unk / total)} of occurrences are {tok.unk_token} "
             f"({len(missing):,} of {len(counts):,} distinct codes not in the vocabulary)")
    return Finding(PROBE, Severity.INFO, title, evidence=evidence, examples=examples, rule=rule, subject=tok.name)


def _unknown_finding(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig) -> Finding | None:
    if tok.unk_id is None:
        return None
    unk, total = tok.unk_id, 0
    surfaces: Counter[str] = Counter()
    hits = 0
    for text, enc in zip(data.sample, data.encodings, strict=True):
        ids = enc.ids
        total += len(ids)
        if unk in ids:
            for i, tid in enumerate(ids):
                if tid == unk:
                    hits += 1
                    a, b = enc.offsets[i]
                    surfaces[text[a:b]] += 1
    rate = hits / total if total else 0.0
    limit = config.threshold("unk_rate_fail")
    evidence = {"unknown_rate": round(rate, 5), "unknown_pieces": hits, "pieces_checked": total,
                "unknown_text": dict(surfaces.most_common(8))}
    examples = [f"{s!r} → {tok.unk_token} ({k:,}×)" for s, k in surfaces.most_common(5)]
    if tok.word_level:
        return _word_level_unknown(tok, rate, hits, surfaces, evidence, examples, limit)
    if rate > limit:
        return Finding(PROBE, Severity.FAIL, f"{pct(rate)} of all pieces are {tok.unk_token}: the model never sees that text",
                       evidence=evidence, examples=examples, recipes=["register-structural-tokens", "add-code-tokens"],
                       rule=f"fail when more than {pct(limit)} of pieces are the unknown token", subject=tok.name)
    if hits:
        return Finding(PROBE, Severity.INFO, f"{hits:,} pieces are {tok.unk_token} ({pct(rate)})", evidence=evidence,
                       examples=examples, rule=f"fail when more than {pct(limit)} of pieces are the unknown token", subject=tok.name)
    return None


def _word_level_unknown(tok: TokenizerHandle, rate: float, hits: int, surfaces: Counter[str], evidence: dict[str, Any],
                        examples: list[str], limit: float) -> Finding:
    """The unknown rate of a word-level vocabulary: words outside it (rare codes cut by min_frequency, new codes)."""
    rule = f"fail when more than {pct(limit)} of the tokens are {tok.unk_token} (words outside the vocabulary)"
    evidence = {**evidence, "distinct_unknown_words": len(surfaces),
                "unknown_words_seen_twice_or_more": sum(1 for k in surfaces.values() if k >= 2)}
    if not hits:
        return Finding(PROBE, Severity.OK, f"no {tok.unk_token}: every word of the data is in the vocabulary",
                       evidence=evidence, rule=rule, subject=tok.name)
    title = f"{pct(rate)} of tokens are {tok.unk_token}: {len(surfaces):,} distinct words are not in the vocabulary"
    sev = Severity.FAIL if rate > limit else Severity.INFO
    return Finding(PROBE, sev, title, evidence=evidence, examples=examples,
                   recipes=["lower-code-min-frequency"] if sev > Severity.OK else [], rule=rule, subject=tok.name)


def _top_n_finding(tok: TokenizerHandle, data: TokenizedData, all_counts: Counter[str], pieces: dict[str, dict[str, Any]],
                   config: EhrDebugConfig) -> Finding:
    top = [c for c, _ in all_counts.most_common(config.top_n_codes)]
    total = sum(all_counts.values())
    covered = sum(all_counts[c] for c in top) / total if total else 0.0
    fragmented = [c for c in top if len(pieces[c]["pieces"]) > 1 or pieces[c]["unk"]]
    n = min(len(data.sample), TOP_N_SAMPLE)
    before = sum(data.lengths[:n]) / n
    after_tok = tok.with_added_tokens(top)
    prefix = config.task_prefix
    sample = [prefix + t for t in data.sample[:n]]
    after_lengths = [len(e) for e in after_tok.backend.encode_batch(sample, add_special_tokens=True)]
    after = sum(after_lengths) / n
    evidence = {
        "codes_added": len(top),
        "of_which_split_today": len(fragmented),
        "coverage_of_code_occurrences": round(covered, 4),
        "mean_length_before": round(before, 2),
        "mean_length_after": round(after, 2),
        "length_change": round((after - before) / before, 4) if before else 0.0,
        "vocab_size_after": after_tok.vocab_size,
        "texts_measured": n,
    }
    if tok.family == "byte-level BPE":
        evidence["note"] = "byte-level BPE keeps the space before an added token as its own 'Ġ' piece, so each code still costs 2 ids"
    title = (f"adding the top {len(top):,} codes as tokens covers {pct(covered)} of code occurrences; "
             f"mean length {before:.1f} → {after:.1f} tokens")
    return Finding(PROBE, Severity.INFO, title, evidence=evidence, recipes=["add-code-tokens"] if fragmented else [],
                   rule="measured by re-encoding the sample with the codes added (single_word, not special)", subject=tok.name)


def word_system(word: str, systems: Sequence[CodeSystem]) -> str:
    """A word's code system: its MEDS-style prefix (``ICD10CM//E11.9`` → ``ICD10CM``), else the built-in it matches."""
    if "//" in word:
        return word.split("//", 1)[0] or "other"
    return next((s.name for s in systems if s.regex.fullmatch(word)), "other")


def _word_level_codes(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig) -> list[Finding]:
    """Every non-special word is a code: per code system, the share of its occurrences outside the vocabulary."""
    specials = {t for t, info in tok.added_tokens().items() if info["special"]}
    systems = resolve_systems(config.code_systems, config.custom_code_systems) if config.code_systems else [*BUILTIN.values()]
    counts: dict[str, Counter[str]] = {}
    pieces: dict[str, dict[str, Any]] = {}
    for text, enc in zip(data.sample, data.encodings, strict=True):
        for word, tid, (a, b) in zip(enc.tokens, enc.ids, enc.offsets, strict=True):
            surface = text[a:b] if tid == tok.unk_id else word
            if surface in specials:
                continue
            counts.setdefault(word_system(surface, systems), Counter())[surface] += 1
            pieces.setdefault(surface, {"pieces": [word], "unk": int(tid == tok.unk_id)})
    findings = [_word_level_system_finding(tok, name, c, pieces, len(data.sample)) for name, c in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))]
    if not findings:
        findings.append(Finding(PROBE, Severity.OK, "no codes in the sampled texts", evidence={"texts_sampled": len(data.sample)},
                                subject=tok.name))
    unknown = _unknown_finding(tok, data, config)
    return findings + ([unknown] if unknown else [])


def probe_codes(tok: TokenizerHandle, data: TokenizedData, config: EhrDebugConfig) -> list[Finding]:
    if tok.word_level:
        return _word_level_codes(tok, data, config)
    systems, how = choose_systems(data.sample, config)
    findings: list[Finding] = []
    unknown = _unknown_finding(tok, data, config)
    if not systems:
        findings.append(Finding(PROBE, Severity.OK, "no medical codes found in the data",
                                evidence={"systems_tried": ", ".join(BUILTIN), "texts_sampled": len(data.sample)},
                                rule="set code_systems (or --code-systems) to name them", subject=tok.name))
        return findings + ([unknown] if unknown else [])
    counts = count_codes(data.sample, systems)
    all_counts: Counter[str] = Counter()
    for c in counts.values():
        all_counts.update(c)
    if not all_counts:
        names = ", ".join(s.name for s in systems)
        return [Finding(PROBE, Severity.OK, f"no {names} codes in the sampled texts",
                        evidence={"systems": names, "texts_sampled": len(data.sample)}, subject=tok.name)]
    pieces = code_pieces(tok, list(all_counts))
    for system in systems:
        if counts[system.name]:
            finding = _system_finding(tok, system, counts[system.name], pieces, config, len(data.sample))
            finding.evidence["systems"] = how
            findings.append(finding)
    if unknown:
        findings.append(unknown)
    findings.append(_top_n_finding(tok, data, all_counts, pieces, config))
    return findings
