"""Synthetic CEHR records and tiny CEHR-BERT / EHRMamba models for the model tests (issue 12).

The outcome of ``timeline_records`` depends on *timing*, not on which codes occur: ``label`` is 1 when the
gap between the two visits is over a year (the ``[LT]`` time token) — so a model that learns it uses the
inserted time tokens. ``has_x`` (a second task) is 1 when code ``X`` occurs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CODES = [f"C{i}" for i in range(12)]


@contextmanager
def one_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def timeline_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Two visits of 2–4 codes each; the gap is a few days or over a year, independent of the codes."""
    rng = random.Random(seed)
    out = []
    for pid in range(n):
        long_gap = rng.random() < 0.5
        gap = rng.randint(400, 900) if long_gap else rng.randint(1, 20)
        first = rng.sample(CODES, rng.randint(2, 4))
        second = rng.sample(CODES, rng.randint(2, 4))
        has_x = rng.random() < 0.5
        if has_x:
            second[-1] = "X"
        codes = first + second
        age = rng.randint(40, 80)
        out.append({
            "patient_id": pid, "codes": codes,
            "ages": [age] * len(first) + [age + gap / 365.25] * len(second),
            "visits": [0] * len(first) + [1] * len(second),
            "days": [0] * len(first) + [gap] * len(second),
            "label": int(long_gap), "has_x": int(has_x),
        })  # fmt: skip
    return out


def tokenizer(records: list[dict[str, Any]] | None = None) -> Any:
    from ehrdebug.models.cehr_inputs import cehr_tokenizer

    return cehr_tokenizer(records or timeline_records(64))


def batch(
    tok: Any, records: list[dict[str, Any]], max_length: int = 32, task_token: str | None = None, **kw: Any
) -> dict[str, Any]:
    """Right-padded CEHR tensors for ``records`` (without ``special_tokens_mask``)."""
    from ehrdebug.models.cehr_inputs import collate_cehr, encode_cehr

    out = collate_cehr([encode_cehr(tok, r, max_length, task_token=task_token, **kw) for r in records])
    out.pop("special_tokens_mask")
    return out


def train(model: Any, batches: list[tuple[dict[str, Any], Any]], steps: int, lr: float = 3e-3) -> list[float]:
    """AdamW over the batches in turn; returns the loss of each step."""
    import torch

    torch.manual_seed(0)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        inputs, labels = batches[step % len(batches)]
        loss = model(**inputs, labels=labels).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    return losses
