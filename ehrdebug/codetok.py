"""The EHR code tokenizer: one word-level id per code, and records turned into BEHRT-style model inputs.

Vocabulary: ``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, ``[VS]``=5 (visit separator),
then the codes of the training records seen at least ``min_frequency`` times, most frequent first (ties
alphabetical). Built with the ``tokenizers`` library (WordLevel model, WhitespaceSplit pre-tokenizer; a
code's inner whitespace becomes ``_``) and wrapped as a ``PreTrainedTokenizerFast``, so ``save_pretrained``
writes tokenizer.json and ``AutoTokenizer``, ``ehrdebug.tokenizers.load_tokenizer`` and ``ehrdebug check
tokenizer`` all read it. There are no subword pieces: a code is in the vocabulary or it is ``[UNK]``.

Numeric values (``values`` beside ``codes``, e.g. a lab ``LAB//X`` with 7.2) with ``value_bins=B``: each
code's training values give B quantile bins, and a valued occurrence becomes one *combined* token
``LAB//X//Q3`` (bin 3 of B). A combined token keeps the sequence one token per event (positions and
ages stay aligned, nothing is lengthened) and lets min_frequency judge each code-and-bin on its own; a
combined token below min_frequency falls back to the bare code, then to ``[UNK]``. The bin number is
also given as ``value_ids`` (0: no value, 1..B) for models with a value embedding. The cut points are
saved in tokenizer_config.json (``value_bins``) and read back with the tokenizer.

``encode_record`` follows BEHRT: ``[CLS]`` first, ``[VS]`` after each visit, ``segment_ids`` alternating
0/1 per visit, ``position_ids`` = visit index + 1 (0 for ``[CLS]`` and padding), ``age_ids`` = whole
``age_bucket_years`` buckets; over-long records keep ``[CLS]`` and their most recent tokens, and visits
are renumbered from the first one kept. Ids that would fall outside a table are clamped into it and
counted in ``clamped`` so the caller can report them instead of the model crashing or wrapping later.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PAD, UNK, CLS, SEP, MASK, VISIT = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[VS]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK, VISIT)  # ids 0..5, in this order
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, VISIT_ID = range(len(SPECIAL_TOKENS))
BIN_MARK = "//Q"
MODEL_INPUT_KEYS = (
    "input_ids",
    "attention_mask",
    "age_ids",
    "segment_ids",
    "position_ids",
    "time_ids",
    "value_ids",
)
DEFAULT_MAX_AGE_IDS = 120
DEFAULT_MAX_POSITION_IDS = 128


def code_token(code: Any) -> str:
    """A code as one whitespace-free word (``"LAB//Blood pressure"`` → ``"LAB//Blood_pressure"``)."""
    return "_".join(str(code).split())


def bin_token(code: str, k: int) -> str:
    return f"{code}{BIN_MARK}{k}"


def _values(record: Mapping[str, Any]) -> list[float | None]:
    values = record.get("values") or []
    codes = record.get("codes") or []
    out = [None if v is None else float(v) for v in values][: len(codes)]
    return out + [None] * (len(codes) - len(out))


def quantile_edges(values: Sequence[float], bins: int) -> list[float]:
    """Distinct interior cut points of ``bins`` equal-count bins (fewer when values repeat)."""
    import numpy as np

    if bins < 2 or not values:
        return []
    qs = np.quantile(np.asarray(values, dtype=float), [i / bins for i in range(1, bins)])
    return sorted({float(q) for q in qs})


def value_bin(edges: Sequence[float], value: float) -> int:
    """1-based bin of ``value`` between the cut points (``len(edges) + 1`` bins)."""
    return 1 + bisect.bisect_right(list(edges), value)


def _event_tokens(record: Mapping[str, Any], edges: Mapping[str, Sequence[float]]) -> list[tuple[str, int]]:
    """``(token, bin)`` per code; bin 0 when the code has no value or no cut points."""
    out: list[tuple[str, int]] = []
    for code, value in zip(record.get("codes") or [], _values(record), strict=True):
        tok = code_token(code)
        if value is not None and tok in edges:
            k = value_bin(edges[tok], value)
            out.append((bin_token(tok, k), k))
        else:
            out.append((tok, 0))
    return out


def build_code_tokenizer(
    records: Iterable[Mapping[str, Any]],
    min_frequency: int = 1,
    value_bins: int = 0,
    *,
    max_vocab_size: int | None = None,
    model_max_length: int = 512,
) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` over the codes of ``records`` (train split only, to avoid leaks)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, not {min_frequency}")
    records = list(records)
    edges: dict[str, list[float]] = {}
    if value_bins >= 2:
        seen: dict[str, list[float]] = {}
        for record in records:
            for code, value in zip(record.get("codes") or [], _values(record), strict=True):
                if value is not None:
                    seen.setdefault(code_token(code), []).append(value)
        edges = {code: quantile_edges(vals, value_bins) for code, vals in seen.items()}
    counts: Counter[str] = Counter()
    for record in records:
        for tok, k in _event_tokens(record, edges):
            counts[tok] += 1
            if k:
                counts[tok.rsplit(BIN_MARK, 1)[0]] += 1  # the bare code: fallback for a rare code-bin token
    kept = sorted(
        (t for t, c in counts.items() if c >= min_frequency and t not in SPECIAL_TOKENS),
        key=lambda t: (-counts[t], t),
    )
    if max_vocab_size is not None:
        kept = kept[: max(0, max_vocab_size - len(SPECIAL_TOKENS))]
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *kept])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A", pair=f"{CLS} $A {SEP} $B:1", special_tokens=[(CLS, CLS_ID), (SEP, SEP_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        cls_token=CLS,
        sep_token=SEP,
        mask_token=MASK,
        additional_special_tokens=[VISIT],
        model_max_length=model_max_length,
        visit_token=VISIT,
        value_bins=edges,
        num_value_bins=int(value_bins) if edges else 0,
        min_frequency=int(min_frequency),
        code_counts_total=int(sum(counts.values())),
    )


def value_edges(tokenizer: Any) -> Mapping[str, Sequence[float]]:
    """The per-code value-bin cut points the tokenizer was built with (read-only; empty without bins)."""
    return getattr(tokenizer, "init_kwargs", {}).get("value_bins") or {}


def num_value_bins(tokenizer: Any) -> int:
    """B when the tokenizer was built with value bins (``value_ids`` then range over 0..B), else 0."""
    return int(getattr(tokenizer, "init_kwargs", {}).get("num_value_bins") or 0)


def _visits(record: Mapping[str, Any]) -> list[int]:
    codes = record.get("codes") or []
    visits = list(record.get("visits") or [])
    if len(visits) != len(codes):
        return [0] * len(codes)  # no (usable) visit index: one visit
    return [int(v) for v in visits]


def record_tokens(record: Mapping[str, Any], tokenizer: Any = None) -> list[str]:
    """The record as the tokenizer's words: codes (or code-bin tokens), ``[VS]`` after each visit; no ``[CLS]``."""
    events = _event_tokens(record, value_edges(tokenizer) if tokenizer is not None else {})
    out: list[str] = []
    visits = _visits(record)
    for i, (tok, _) in enumerate(events):
        out.append(tok)
        if i + 1 == len(events) or visits[i + 1] != visits[i]:
            out.append(VISIT)
    return out


def record_text(record: Mapping[str, Any], tokenizer: Any = None) -> str:
    """The record as one whitespace-separated text (what ``check tokenizer`` reads from a codes JSONL)."""
    return " ".join(record_tokens(record, tokenizer))


_VOCABS: dict[int, tuple[Any, int, dict[str, int]]] = {}


def _vocab(tokenizer: Any) -> dict[str, int]:
    """``tokenizer.get_vocab()``, kept per tokenizer object and size (it builds a new dict on every call)."""
    key = id(tokenizer)
    cached = _VOCABS.get(key)
    if cached is None or cached[0] is not tokenizer or cached[1] != len(tokenizer):
        if len(_VOCABS) > 16:
            _VOCABS.clear()
        cached = (tokenizer, len(tokenizer), tokenizer.get_vocab())
        _VOCABS[key] = cached
    return cached[2]


def _token_id(vocab: Mapping[str, int], tok: str) -> int:
    if tok in vocab:
        return vocab[tok]
    if BIN_MARK in tok:
        return vocab.get(tok.rsplit(BIN_MARK, 1)[0], UNK_ID)
    return UNK_ID


def _clamp(value: int, size: int, counter: Counter[str], name: str) -> int:
    if value < 0:
        counter[name] += 1
        return 0
    if value >= size:
        counter[name] += 1
        return size - 1
    return value


def encode_record(
    tokenizer: Any,
    record: Mapping[str, Any],
    max_length: int = 512,
    *,
    max_age_ids: int = DEFAULT_MAX_AGE_IDS,
    age_bucket_years: float = 1.0,
    max_position_ids: int = DEFAULT_MAX_POSITION_IDS,
    max_time_ids: int = 0,
    time_bucket_days: int = 30,
    include_values: bool | None = None,
    max_value_ids: int = 0,
    next_visit: bool = False,
) -> dict[str, Any]:
    """One record → unpadded model inputs plus what had to be clamped, truncated or made ``[UNK]``.

    Lists (same length): ``input_ids``, ``attention_mask``, ``age_ids``, ``segment_ids``, ``position_ids``,
    ``special_tokens_mask`` (1 on ``[CLS]``/``[VS]``), and ``time_ids`` when ``max_time_ids > 0`` (days since
    the first event in ``time_bucket_days`` buckets), ``value_ids`` when the tokenizer has value bins (or
    ``include_values``; clamped to ``max_value_ids`` when given). ``next_visit_labels`` (multi-hot over
    the vocabulary) when ``next_visit``. Reported: ``clamped`` (``{"age": n, "position": n, "time": n,
    "value": n}``: codes whose id was forced into its table),
    ``truncated`` (tokens dropped from the oldest end), ``unknown`` (codes that became ``[UNK]``).
    """
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 ([CLS] and one code), not {max_length}")
    vocab = _vocab(tokenizer)
    codes = record.get("codes") or []
    events = _event_tokens(record, value_edges(tokenizer))
    ages = list(record.get("ages") or [])
    ages = ages if len(ages) == len(codes) else [0] * len(codes)
    days = list(record.get("days") or [])
    days = days if len(days) == len(codes) else [0] * len(codes)
    visits = _visits(record)
    body: list[tuple[int, int, float, float, int]] = []  # id, visit, age, day, bin
    unknown = 0
    for i, (tok, k) in enumerate(events):
        tid = _token_id(vocab, tok)
        unknown += tid == UNK_ID
        body.append((tid, visits[i], float(ages[i] or 0), float(days[i] or 0), k))
        if i + 1 == len(events) or visits[i + 1] != visits[i]:
            body.append((VISIT_ID, visits[i], float(ages[i] or 0), float(days[i] or 0), 0))
    truncated = max(0, len(body) - (max_length - 1))
    body = body[truncated:]
    clamped: Counter[str] = Counter()
    first_age = body[0][2] if body else 0.0
    with_values = num_value_bins(tokenizer) > 0 if include_values is None else include_values
    out: dict[str, list[int]] = {
        key: [] for key in ("input_ids", "age_ids", "segment_ids", "position_ids", "special_tokens_mask")
    }
    if max_time_ids:
        out["time_ids"] = []
    if with_values:
        out["value_ids"] = []

    def add(tid: int, age: float, visit_no: int, day: float, k: int, special: int) -> None:
        seen: Counter[str] = Counter()  # clamps are counted per code, not again for [CLS]/[VS]
        out["input_ids"].append(tid)
        out["age_ids"].append(_clamp(int(age // age_bucket_years), max_age_ids, seen, "age"))
        out["segment_ids"].append(visit_no % 2 if visit_no >= 0 else 0)
        out["position_ids"].append(
            _clamp(visit_no + 1, max_position_ids, seen, "position") if visit_no >= 0 else 0
        )
        out["special_tokens_mask"].append(special)
        if max_time_ids:
            out["time_ids"].append(_clamp(int(day // time_bucket_days), max_time_ids, seen, "time"))
        if not special:
            clamped.update(seen)
        if with_values:
            out["value_ids"].append(_clamp(k, max_value_ids, seen, "value") if max_value_ids else k)

    add(CLS_ID, first_age, -1, 0.0, 0, 1)
    visit_no, previous = -1, None
    for tid, visit, age, day, k in body:
        if visit != previous:
            visit_no, previous = visit_no + 1, visit
        add(tid, age, visit_no, day, k, int(tid == VISIT_ID))
    result: dict[str, Any] = dict(out)
    result["attention_mask"] = [1] * len(out["input_ids"])
    result["clamped"] = {name: clamped[name] for name in ("age", "position", "time", "value")}
    result["truncated"] = truncated
    result["unknown"] = unknown
    if next_visit:
        result["next_visit_labels"] = next_visit_labels(tokenizer, record.get("next_visit_codes") or [])
    return result


def next_visit_labels(tokenizer: Any, codes: Iterable[Any], size: int | None = None) -> list[float]:
    """Multi-hot over the vocabulary (``size`` defaults to ``len(tokenizer)``); unknown codes are left out."""
    vocab = _vocab(tokenizer)
    width = size or len(tokenizer)
    target = [0.0] * width
    for code in codes:
        tid = vocab.get(code_token(code))
        if tid is not None and tid >= len(SPECIAL_TOKENS) and tid < width:
            target[tid] = 1.0
    return target


def summarize(features: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Totals over encoded records: how many ids were clamped (per stream), tokens truncated, codes unknown."""
    total: Counter[str] = Counter()
    for feat in features:
        total["records"] += 1
        total["tokens"] += len(feat["input_ids"])
        for name, n in feat.get("clamped", {}).items():
            total[f"clamped_{name}"] += n
        total["truncated_tokens"] += feat.get("truncated", 0)
        total["truncated_records"] += bool(feat.get("truncated", 0))
        total["unknown_codes"] += feat.get("unknown", 0)
    return dict(total)


def is_code_record(record: Mapping[str, Any]) -> bool:
    """A code-sequence record (``codes`` a list), as ``ehrdebug data build codes`` writes them."""
    return isinstance(record.get("codes"), list)


def saved_value_edges(tokenizer_dir: str) -> dict[str, list[float]]:
    """The value-bin cut points a saved code tokenizer carries (tokenizer_config.json), without loading it."""
    import json
    import os

    path = os.path.join(tokenizer_dir, "tokenizer_config.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return dict(json.load(fh).get("value_bins") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def read_code_texts(
    path: str,
    limit: int | None = None,
    *,
    stats: Any = None,
    value_bins: Mapping[str, Sequence[float]] | None = None,
) -> list[str] | None:
    """The records of a codes file as tokenizer texts (``record_text``), or None when it holds no code records."""
    from ehrdebug.io.tables import iter_records

    first = next(iter(iter_records(path, limit=1)), None)
    if first is None or not is_code_record(first):
        return None
    holder = _EdgesOnly(value_bins or {})
    return [record_text(r, holder) for r in iter_records(path, limit=limit, stats=stats) if is_code_record(r)]


class _EdgesOnly:
    """Stands in for a tokenizer where only its saved value-bin cut points are needed."""

    def __init__(self, edges: Mapping[str, Sequence[float]]) -> None:
        self.init_kwargs = {"value_bins": dict(edges)}
