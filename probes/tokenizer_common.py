"""What the tokenizer probes share: one batched pass over all texts and one detailed pass over a sample.

The full pass only keeps each sequence's length, so it scales to millions of sequences at the speed of
``encode_batch``; everything that needs ids, offsets or decoding works on a bounded sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ehrdebug.tokenizers import TokenizerHandle

SAMPLE_SIZE = 50_000
CHUNK = 16_384


@dataclass
class TokenizedData:
    """Texts, their lengths with special tokens (all of them) and sample encodings without (the first ``sample_size``)."""

    texts: Sequence[str]
    lengths: list[int]
    sample: list[str]
    encodings: list[Any] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.texts)


def plain_backend(tok: TokenizerHandle) -> Any:
    """The backend with no truncation or padding (a saved tokenizer.json may carry either), copied only if needed."""
    backend = tok.backend
    if backend.truncation is None and backend.padding is None:
        return backend
    from tokenizers import Tokenizer

    clone = Tokenizer.from_str(backend.to_str())
    clone.no_truncation()
    clone.no_padding()
    return clone


def tokenize_data(tok: TokenizerHandle, texts: Sequence[str], sample_size: int = SAMPLE_SIZE, prefix: str = "") -> TokenizedData:
    """Lengths (special tokens included) of every text; encodings (without) of the first ``sample_size``.

    One pass when the post-processor adds a fixed number of special tokens (checked on the first
    texts): the sample's encodings are then the first chunks of the length pass.
    """
    backend = plain_backend(tok)
    sample = list(texts[:sample_size])
    extra = backend.num_special_tokens_to_add(False)
    head = list(texts[:64])
    with_specials = [len(e) for e in backend.encode_batch(head, add_special_tokens=True)]
    without = [len(e) + extra for e in backend.encode_batch(head, add_special_tokens=False)]
    one_pass = not prefix and with_specials == without
    lengths: list[int] = []
    encodings: list[Any] = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        if one_pass:
            encs = backend.encode_batch(chunk, add_special_tokens=False)
            lengths.extend(len(e) + extra for e in encs)
            if len(encodings) < len(sample):
                encodings.extend(encs[: len(sample) - len(encodings)])
        else:
            chunk = [prefix + t for t in chunk] if prefix else chunk
            lengths.extend(len(e) for e in backend.encode_batch(chunk, add_special_tokens=True))
    if not one_pass:
        encodings = backend.encode_batch(sample, add_special_tokens=False) if sample else []
    return TokenizedData(texts=texts, lengths=lengths, sample=sample, encodings=encodings, meta={"one_pass": one_pass})


def span_pieces(encoding: Any, start: int, end: int) -> list[int]:
    """Indices of the pieces whose character offsets overlap ``[start, end)``."""
    return [i for i, (a, b) in enumerate(encoding.offsets) if a < end and b > start and b > a]


def weighted_quantile(values: Sequence[int], weights: Sequence[int], q: float) -> float:
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(weights)
    if not total:
        return 0.0
    cut = q * total
    seen = 0
    for value, weight in pairs:
        seen += weight
        if seen >= cut:
            return float(value)
    return float(pairs[-1][0])


def quantile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return float(sorted_values[idx])


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"
