"""CEHR-style model inputs: artificial time tokens between visits, visit start/end tokens, and their batches.

CEHR-BERT (Pang et al. 2021) and EHRMamba (Fallahpour et al. 2024) read a patient timeline as
``[VS] codes… [VE] <gap> [VS] codes… [VE] …``: each visit is bracketed by a visit-start and a visit-end
token and the gap before the next visit becomes one artificial time token, so the model sees *how long*
passed without inventing a code. Gaps (days from the last event of a visit to the first of the next):

* under 4 weeks: ``[W0]``–``[W3]`` (whole weeks), under a year: ``[M1]``–``[M11]`` (whole months, at least 1),
  a year or more: ``[LT]`` (long term).

The visit start token is the code tokenizer's ``[VS]`` (``ehrdebug.codetok``); ``[VE]``, the time tokens and
the task tokens of multitask prompted fine-tuning (``[MOR]``…, EHRMamba's prompts) are ``CEHR_SPECIAL_TOKENS``
/ ``TASK_TOKENS``, which ``cehr_tokenizer`` adds to a code tokenizer when it lacks them. Tokens are
bracketed so that no real code (``M1`` could be one) collides with them.

Everything here is a pure function of a record (``codes``, ``ages``, ``visits``, ``days`` as docs/data.md
defines them) except the torch batching at the end. Mamba has no attention mask over a padded batch: batches
are right-padded (padding after the last event cannot change a causal model's earlier states) and the
causal-LM labels are -100 on padding (``causal_lm_labels``), so padding never enters the loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.codetok import CLS, CLS_ID, PAD_ID, UNK_ID, VISIT, code_token

VISIT_START, VISIT_END = VISIT, "[VE]"
WEEK_TOKENS = tuple(f"[W{i}]" for i in range(4))
MONTH_TOKENS = tuple(f"[M{i}]" for i in range(1, 12))
LONG_TERM = "[LT]"
TIME_TOKENS = (*WEEK_TOKENS, *MONTH_TOKENS, LONG_TERM)
#: tokens every CEHR vocabulary holds beside the code tokenizer's own specials ([VS] is already one of them)
CEHR_SPECIAL_TOKENS = (VISIT_END, *TIME_TOKENS)
#: default prompts for multitask prompted fine-tuning (mortality, length of stay, readmission)
TASK_TOKENS = ("[MOR]", "[LOS]", "[REA]")
IGNORE_INDEX = -100

#: token type ids (the token-type embedding); 0 is padding
TOKEN_TYPES = {"pad": 0, "code": 1, "visit_start": 2, "visit_end": 3, "time": 4, "class": 5, "task": 6}
TYPE_VOCAB_SIZE = len(TOKEN_TYPES)
FLOAT_KEYS = ("time_values", "age_values")
INT_KEYS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "segment_ids",
    "position_ids",
    "special_tokens_mask",
)


def gap_token(days: float) -> str:
    """The artificial time token for a gap of ``days`` between two visits (negative gaps count as 0)."""
    d = max(0, int(days))
    if d < 28:
        return WEEK_TOKENS[d // 7]
    if d < 365:
        return MONTH_TOKENS[min(11, max(1, d // 30)) - 1]
    return LONG_TERM


def _aligned(record: Mapping[str, Any], key: str, default: Any) -> list[Any]:
    codes = record.get("codes") or []
    values = list(record.get(key) or [])
    return values if len(values) == len(codes) else [default] * len(codes)


def insert_time_tokens(record: Mapping[str, Any], *, visit_tokens: bool = True) -> dict[str, Any]:
    """A copy of ``record`` whose ``codes`` hold ``[VS] … [VE]`` around each visit and a time token between visits.

    ``ages``, ``visits``, ``days`` (and ``values``) stay aligned: a visit's ``[VS]`` carries its first event's
    day and age, ``[VE]`` its last; a time token carries the next visit's first day, age and visit index.
    ``token_types`` (names of ``TOKEN_TYPES``) says what each entry is. Consecutive codes with the same
    ``visits`` value form a visit; a record without usable visit indices is one visit. ``visit_tokens=False``
    inserts only the time tokens. Other fields (labels, ids) are copied unchanged.
    """
    codes = [code_token(c) for c in record.get("codes") or []]
    ages = _aligned(record, "ages", 0)
    days = _aligned(record, "days", 0)
    visits = _aligned(record, "visits", 0)
    values = _aligned(record, "values", None)
    out: dict[str, list[Any]] = {k: [] for k in ("codes", "ages", "visits", "days", "values", "token_types")}

    def put(token: str, i: int, kind: str) -> None:
        out["codes"].append(token)
        out["ages"].append(ages[i])
        out["visits"].append(visits[i])
        out["days"].append(days[i])
        out["values"].append(values[i] if kind == "code" else None)
        out["token_types"].append(kind)

    for i, code in enumerate(codes):
        first = i == 0 or visits[i] != visits[i - 1]
        last = i + 1 == len(codes) or visits[i + 1] != visits[i]
        if first and i > 0:
            put(gap_token(float(days[i] or 0) - float(days[i - 1] or 0)), i, "time")
        if first and visit_tokens:
            put(VISIT_START, i, "visit_start")
        put(code, i, "code")
        if last and visit_tokens:
            put(VISIT_END, i, "visit_end")
    result = {k: v for k, v in record.items() if k not in out}
    result.update(out)
    if "values" not in record:
        result.pop("values")
    return result


def cehr_tokenizer(
    records: Sequence[Mapping[str, Any]], *, task_tokens: Sequence[str] = TASK_TOKENS, **kwargs: Any
) -> Any:
    """``ehrdebug.codetok.build_code_tokenizer`` over ``records`` plus the CEHR and task tokens it lacks.

    The added tokens are special (never split, never ``[UNK]``) and survive ``save_pretrained``. A tokenizer
    whose builder already includes ``CEHR_SPECIAL_TOKENS`` gets only the task tokens it is missing.
    """
    from ehrdebug.codetok import build_code_tokenizer

    tokenizer = build_code_tokenizer(records, **kwargs)
    return ensure_cehr_tokens(tokenizer, task_tokens)


def ensure_cehr_tokens(tokenizer: Any, task_tokens: Sequence[str] = TASK_TOKENS) -> Any:
    """Add the CEHR tokens (and ``task_tokens``) a tokenizer does not hold yet; returns the same tokenizer."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (*CEHR_SPECIAL_TOKENS, *task_tokens) if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    return tokenizer


def _clamp(value: int, size: int) -> tuple[int, bool]:
    if size and value >= size:
        return size - 1, True
    return value, False


def encode_cehr(
    tokenizer: Any,
    record: Mapping[str, Any],
    max_length: int = 512,
    *,
    task_token: str | None = None,
    add_cls: bool = True,
    max_visits: int = 0,
    visit_tokens: bool = True,
) -> dict[str, Any]:
    """One record → unpadded CEHR inputs (lists), plus what was truncated, unknown or clamped.

    Layout: ``[task token]`` (when given) ``[CLS]`` (when ``add_cls``), then the record with time and visit
    tokens (``insert_time_tokens``); over-long records keep the prefix and their most recent tokens. Lists:
    ``input_ids``, ``attention_mask``, ``token_type_ids``, ``segment_ids`` (1/2 alternating per visit, 0 on
    the prefix), ``position_ids`` (visit order from 1, renumbered from the first visit kept; 0 on the
    prefix; clamped below ``max_visits`` when given), ``time_values`` (days), ``age_values`` (years),
    ``special_tokens_mask`` (1 on everything that is not a code). Reported: ``truncated``, ``unknown``,
    ``clamped`` (visit orders forced into the table).
    """
    vocab = tokenizer.get_vocab()
    prefix = ([task_token] if task_token else []) + ([CLS] if add_cls else [])
    if max_length <= len(prefix):
        raise ValueError(f"max_length {max_length} leaves no room after the prefix {prefix}")
    for tok in prefix:
        if tok not in vocab:
            raise ValueError(f"{tok} is not in the tokenizer's vocabulary (build it with cehr_tokenizer)")
    seq = insert_time_tokens(record, visit_tokens=visit_tokens)
    body = list(zip(seq["codes"], seq["token_types"], seq["visits"], seq["days"], seq["ages"], strict=True))
    truncated = max(0, len(body) - (max_length - len(prefix)))
    body = body[truncated:]
    first_day = float(body[0][3] or 0) if body else 0.0
    first_age = float(body[0][4] or 0) if body else 0.0
    out: dict[str, list[Any]] = {k: [] for k in (*INT_KEYS, *FLOAT_KEYS)}

    def add(tid: int, kind: str, visit_no: int, day: float, age: float) -> bool:
        order, clamped = _clamp(visit_no + 1, max_visits) if visit_no >= 0 else (0, False)
        out["input_ids"].append(tid)
        out["attention_mask"].append(1)
        out["token_type_ids"].append(TOKEN_TYPES[kind])
        out["segment_ids"].append(1 + visit_no % 2 if visit_no >= 0 else 0)
        out["position_ids"].append(order)
        out["special_tokens_mask"].append(int(kind != "code"))
        out["time_values"].append(day)
        out["age_values"].append(age)
        return clamped

    for tok in prefix:
        add(vocab[tok], "task" if tok == task_token else "class", -1, first_day, first_age)
    unknown = clamped = 0
    visit_no, previous = -1, None
    for tok, kind, visit, day, age in body:
        if visit != previous:
            visit_no, previous = visit_no + 1, visit
        tid = vocab.get(tok, UNK_ID)
        unknown += tid == UNK_ID
        clamped += add(tid, kind, visit_no, float(day or 0), float(age or 0))
    return {**out, "truncated": truncated, "unknown": unknown, "clamped": {"position": clamped}}


def collate_cehr(
    features: Sequence[Mapping[str, Any]], pad_to_multiple_of: int | None = None
) -> dict[str, Any]:
    """Right-pad encoded records into tensors (ids 0, ``attention_mask`` 0, floats 0.0); ``label``/``task_ids``
    stacked when present. Right padding is what makes a causal model (Mamba) safe without an attention mask."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    batch: dict[str, Any] = {}
    for key in (*INT_KEYS, *FLOAT_KEYS):
        if key in features[0]:
            fill = {"input_ids": PAD_ID, "special_tokens_mask": 1}.get(key, 0)
            rows = [list(f[key]) + [fill] * (width - len(f[key])) for f in features]
            batch[key] = torch.tensor(rows, dtype=torch.float if key in FLOAT_KEYS else torch.long)
    for key in ("label", "task_ids"):
        if key in features[0]:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


def causal_lm_labels(input_ids: Any, attention_mask: Any | None = None, pad_token_id: int = PAD_ID) -> Any:
    """Next-token labels for a right-padded batch: the ids themselves, -100 on padding (the model shifts them).

    Without the -100s, every padded row teaches the model to predict ``[PAD]`` after ``[PAD]`` — the loss falls
    on padding while the timeline itself does not converge (seed 004's reproduction script).
    """
    pad = input_ids.eq(pad_token_id) if attention_mask is None else attention_mask.eq(0)
    return input_ids.masked_fill(pad, IGNORE_INDEX)


def last_token_index(attention_mask: Any) -> Any:
    """Index of the last non-padding position of each row (right or left padding; 0 for an empty row).

    Computed from the mask itself rather than "first pad - 1", which pools position 0 of a row without padding.
    """
    import torch

    positions = torch.arange(attention_mask.size(1), device=attention_mask.device).expand_as(attention_mask)
    return torch.where(attention_mask.bool(), positions, torch.zeros_like(positions)).max(dim=1).values


__all__ = [
    "CEHR_SPECIAL_TOKENS",
    "CLS_ID",
    "TASK_TOKENS",
    "TIME_TOKENS",
    "TOKEN_TYPES",
    "causal_lm_labels",
    "cehr_tokenizer",
    "collate_cehr",
    "encode_cehr",
    "ensure_cehr_tokens",
    "gap_token",
    "insert_time_tokens",
    "last_token_index",
]
