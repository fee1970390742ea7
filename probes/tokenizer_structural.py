"""tokenizer.structural: every structural token (``<demo>``, ``<v>``, ``<END>``…) must be one id.

Seed 000: BART split ``<demo>`` into ``['Ġ<', 'dem', 'o', '>']`` because it was never registered, and
a byte-level BPE splits differently after a space (``Ġ<``) than at the start, so each token is
encoded alone, after a space, after a word and where it first occurs in the data. A token also has
to survive normalisation (BERT uncased turns ``<END>`` into ``<end>``) and come back from decode.
A word-level vocabulary (EHR code tokenizers) has no pieces: there a token is right when it is in the
vocabulary and encodes to one id, and wrong when it is the unknown id (never "split").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from ehrdebug.tokenizers import TokenizerHandle
from probes.tokenizer_common import span_pieces

PROBE = "tokenizer.structural"
_MARKUP = re.compile(r"(?<!\S)(<[^\s<>]{1,24}>|\[[A-Za-z_]{1,24}\])(?!\S)")


def find_structural_tokens(texts: Sequence[str], min_share: float = 0.02, limit: int = 5000) -> list[str]:
    """Markup-like words (``<demo>``, ``<\\v>``, ``[SEP]``) present in at least ``min_share`` of the texts."""
    counts: dict[str, int] = {}
    sample = texts[:limit]
    for text in sample:
        for tok in set(_MARKUP.findall(text)):
            counts[tok] = counts.get(tok, 0) + 1
    floor = max(1, int(min_share * len(sample)))
    return [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= floor]


def _contexts(token: str, texts: Sequence[str], word_level: bool = False) -> dict[str, tuple[str, int]]:
    """Where the token is encoded; a word-level vocabulary splits on whitespace only, so no "after a word"."""
    contexts = {"alone": (token, 0), "after a space": (f"M {token}", 2)}
    if not word_level:
        contexts["after a word"] = (f"M{token}", 1)
    for text in texts[:2000]:
        at = text.find(token)
        if at >= 0:
            lo = max(0, at - 40)
            contexts["in the data"] = (text[lo : at + len(token) + 20], at - lo)
            break
    return contexts


def check_token(tok: TokenizerHandle, token: str, texts: Sequence[str] = ()) -> dict[str, Any]:
    """Pieces of ``token`` in each context, plus normalisation, round-trip and added-token settings."""
    contexts = _contexts(token, texts, tok.word_level)
    encs = tok.backend.encode_batch([c[0] for c in contexts.values()], add_special_tokens=False)
    own_id = tok.token_id(token)
    pieces: dict[str, list[str]] = {}
    split_in: list[str] = []
    unknown: list[str] = []
    worst = 1
    for (name, (text, at)), enc in zip(contexts.items(), encs, strict=True):
        idx = span_pieces(enc, at, at + len(token))
        shown = []
        for i in idx:
            if tok.unk_id is not None and enc.ids[i] == tok.unk_id and own_id != tok.unk_id:  # [UNK] itself is fine
                a, b = enc.offsets[i]
                unknown.append(text[a:b])
                shown.append(str(tok.unk_token))
            else:
                shown.append(enc.tokens[i])
        pieces[name] = shown
        whole = len(idx) == 1 and enc.offsets[idx[0]] == (at, at + len(token))
        single = whole and (enc.ids[idx[0]] == own_id if own_id is not None else enc.ids[idx[0]] != tok.unk_id)
        if not single:
            split_in.append(name)
            worst = max(worst, len(idx))
    alone_ids = encs[0].ids
    decoded = tok.decode(alone_ids, skip_special_tokens=False)
    normalised = tok.normalize(token)
    added = tok.added_tokens().get(token)
    if added and added["special"]:
        dropped = tok.decode(alone_ids, skip_special_tokens=True).strip() == ""
    else:
        dropped = False
    return {
        "token": token,
        "id": own_id,
        "pieces": pieces,
        "n_pieces": worst if split_in else 1,
        "split_in": split_in,
        "unknown": sorted(set(unknown)),
        "normalised_to": normalised if normalised != token else None,
        "decodes_to": decoded,
        "round_trips": decoded == token,
        "added_token": added,
        "dropped_by_skip_special_tokens": dropped,
        "in_vocabulary": own_id is not None,
    }


def _settings(info: dict[str, Any]) -> str:
    added = info["added_token"]
    if not added:
        return "an ordinary vocabulary piece" if info["in_vocabulary"] else "not in the vocabulary"
    flags = ", ".join(f"{k}={v}" for k, v in added.items() if k != "id")
    return f"added token id {added['id']} ({flags})"


def probe_structural(tok: TokenizerHandle, tokens: Sequence[str], texts: Sequence[str] = (), source: str = "configured") -> list[Finding]:
    """One finding per broken structural token (fail when split), one ``ok`` finding for the rest."""
    if not tokens:
        return [
            Finding(PROBE, Severity.OK, "no structural tokens configured or found in the data",
                    evidence={"tokenizer": tok.name, "family": tok.family},
                    rule="pass --structural-tokens or set structural_tokens to check markup such as <demo>", subject=tok.name)
        ]
    findings: list[Finding] = []
    good: dict[str, str] = {}
    occurrences = {t: sum(1 for x in texts[:5000] if t in x) for t in tokens}
    for token in tokens:
        info = check_token(tok, token, texts)
        evidence: dict[str, Any] = {"token": token}
        evidence.update({f"pieces {k}": v for k, v in info["pieces"].items()})
        evidence.update(settings=_settings(info), texts_containing=occurrences[token])
        if info["unknown"]:
            evidence["maps_to_unknown"] = info["unknown"]
        if info["normalised_to"]:
            evidence["normalised_to"] = info["normalised_to"]
        if info["split_in"] and tok.word_level:
            findings.append(Finding(
                PROBE, Severity.FAIL, f"{token!r} is not in the vocabulary: it encodes to {tok.unk_token or 'no id'}",
                evidence=evidence, examples=[f"{token!r} {k} → {v}" for k, v in info["pieces"].items()],
                recipes=["register-structural-tokens"],
                rule="a structural token must be in a word-level vocabulary and encode to one id", subject=tok.name,
            ))
        elif info["split_in"]:
            where = ", ".join(info["split_in"])
            alone = info["pieces"].get("after a space") or info["pieces"]["alone"]
            unk = f"; {', '.join(map(repr, info['unknown']))} is {tok.unk_token}" if info["unknown"] else ""
            findings.append(Finding(
                PROBE, Severity.FAIL,
                f"{token!r} is split into {info['n_pieces']} pieces: {alone}{unk}",
                evidence=evidence,
                examples=[f"{token!r} {k} → {v} ({len(v)} pieces)" for k, v in info["pieces"].items() if k in info["split_in"]],
                recipes=["register-structural-tokens", "init-new-embeddings-mean"],
                rule=f"a structural token must encode to exactly one id in every context (split {where})",
                subject=tok.name,
            ))
        elif not info["round_trips"] or info["normalised_to"]:
            why = f"normalised to {info['normalised_to']!r}" if info["normalised_to"] else f"decodes to {info['decodes_to']!r}"
            findings.append(Finding(
                PROBE, Severity.WARN, f"{token!r} is one token but {why}", evidence=evidence,
                recipes=["register-structural-tokens"],
                rule="a structural token must survive normalisation and decode back to itself", subject=tok.name,
            ))
        else:
            note = "; dropped by decode(skip_special_tokens=True)" if info["dropped_by_skip_special_tokens"] else ""
            good[token] = _settings(info) + note
    if good and tok.word_level:
        findings.append(Finding(
            PROBE, Severity.OK, f"{len(good)} of {len(tokens)} structural tokens are in the vocabulary and encode to one id",
            evidence={"tokens": good, "source": source, "family": tok.family},
            rule="a structural token must be in a word-level vocabulary and encode to one id", subject=tok.name,
        ))
    elif good:
        findings.append(Finding(
            PROBE, Severity.OK,
            f"{len(good)} of {len(tokens)} structural tokens encode to one id alone, after a space and after a word",
            evidence={"tokens": good, "source": source, "family": tok.family},
            rule="a structural token must encode to exactly one id in every context", subject=tok.name,
        ))
    return findings
