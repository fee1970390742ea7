"""data.prompt_loss: instruction data whose prompt tokens all carry loss (seed 003's "why did the loss fall so fast").

When a causal LM is fine-tuned on ``prompt + response`` with ``labels = input_ids``, most of the loss is spent
on predicting the prompt (the note, the instruction, a fixed template) rather than the answer. The template
part is learned in a few dozen steps, so the loss collapses (3.34 → 0.05) while the answer is no better.
This probe reads real batches (``input_ids``, ``labels``) and the prompt/response boundary (each example's
prompt length, or the response marker such as ``### Response:`` found in its tokens) and says what share of
the loss-bearing tokens — and, given a model, of the loss itself (per-token cross-entropy) — is the prompt's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "data.prompt_loss"
FAIL_SHARE = 0.5  # the prompt takes at least half of the loss (or of the loss-bearing tokens)
RULE = (
    f"warn when every prompt token of an instruction example carries loss (labels not -100 before the response); "
    f"fail when the prompt takes >= {FAIL_SHARE:.0%} of the loss (model given) or of the loss-bearing tokens"
)


def _marker_end(ids: list[int], marker: list[int]) -> int | None:
    """Index just after the last occurrence of ``marker`` in ``ids``."""
    m = len(marker)
    for start in range(len(ids) - m, -1, -1):
        if ids[start : start + m] == marker:
            return start + m
    return None


def _rows(batches: Iterable[dict[str, Any]]) -> list[tuple[list[int], list[int], list[int], Any]]:
    rows = []
    for batch in batches:
        ids, labels = batch["input_ids"], batch["labels"]
        mask = batch.get("attention_mask")
        for i in range(len(ids)):
            row_ids = [int(x) for x in (ids[i].tolist() if hasattr(ids[i], "tolist") else ids[i])]
            row_labels = [int(x) for x in (labels[i].tolist() if hasattr(labels[i], "tolist") else labels[i])]
            row_mask = (
                [int(x) for x in (mask[i].tolist() if hasattr(mask[i], "tolist") else mask[i])]
                if mask is not None
                else [1] * len(row_ids)
            )
            rows.append((row_ids, row_labels, row_mask, batch))
    return rows


def _token_losses(model: Any, batch: dict[str, Any]) -> Any:
    """Per-position cross-entropy of the next token, aligned with ``labels`` (position 0 has none: nan)."""
    import torch

    with torch.no_grad():
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")
        ).logits.float()
    targets = batch["input_ids"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
    return torch.cat([torch.full((losses.shape[0], 1), float("nan")), losses], dim=1)


def prompt_loss(batches: Iterable[dict[str, Any]], tokenizer: Any = None, model: Any = None,
                prompt_lengths: list[int] | None = None, response_marker: str | None = "### Response:",
                subject: str = "") -> list[Finding]:  # fmt: skip
    """Share of the loss spent on the prompt of instruction examples (see the module docstring)."""
    batches = list(batches)
    rows = _rows(batches)
    marker = (
        tokenizer(response_marker, add_special_tokens=False)["input_ids"]
        if tokenizer is not None and response_marker
        else None
    )
    losses = {id(b): _token_losses(model, b) for b in batches} if model is not None else {}
    seen_in_batch: dict[int, int] = {}
    n_examples = structured = fully_unmasked = 0
    prompt_tokens = prompt_counted = response_counted = 0
    prompt_loss_sum = response_loss_sum = 0.0
    example: dict[str, Any] | None = None
    for k, (ids, labels, mask, batch) in enumerate(rows):
        n_examples += 1
        row_in_batch = seen_in_batch.get(id(batch), 0)
        seen_in_batch[id(batch)] = row_in_batch + 1
        end = (
            prompt_lengths[k]
            if prompt_lengths is not None and k < len(prompt_lengths)
            else (_marker_end(ids, marker) if marker else None)
        )
        if end is None or end <= 1:
            continue
        structured += 1
        counted = [t for t in range(1, len(ids)) if labels[t] != -100 and mask[t]]
        in_prompt = [t for t in counted if t < end]
        prompt_tokens += end - 1
        prompt_counted += len(in_prompt)
        response_counted += len(counted) - len(in_prompt)
        if len(in_prompt) >= end - 1:
            fully_unmasked += 1
            if example is None and tokenizer is not None:
                example = {
                    "prompt_tokens": end - 1,
                    "response_tokens": len(counted) - len(in_prompt),
                    "prompt_end": tokenizer.decode(ids[max(1, end - 8) : end]),
                }
        if losses:
            row = losses[id(batch)][row_in_batch]
            prompt_loss_sum += float(sum(row[t] for t in in_prompt))
            response_loss_sum += float(sum(row[t] for t in counted if t >= end))
    evidence: dict[str, Any] = {
        "examples": n_examples,
        "with_prompt_boundary": structured,
        "prompt_fully_in_loss": fully_unmasked,
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_with_loss": prompt_counted,
        "response_tokens_with_loss": response_counted,
    }
    if not structured:
        return [
            Finding(
                PROBE,
                Severity.OK,
                "no prompt/response structure found in the batches (no prompt length, "
                f"no {response_marker!r} marker): nothing to check",
                evidence,
                rule=RULE,
                subject=subject,
            )
        ]
    token_share = prompt_counted / max(prompt_counted + response_counted, 1)
    evidence["prompt_token_share"] = round(token_share, 4)
    loss_share = None
    if losses:
        loss_share = prompt_loss_sum / max(prompt_loss_sum + response_loss_sum, 1e-12)
        evidence.update(
            {
                "prompt_loss_share": round(loss_share, 4),
                "prompt_loss_sum": round(prompt_loss_sum, 3),
                "response_loss_sum": round(response_loss_sum, 3),
                "mean_prompt_token_loss": round(prompt_loss_sum / max(prompt_counted, 1), 4),
                "mean_response_token_loss": round(response_loss_sum / max(response_counted, 1), 4),
            }
        )
    if not fully_unmasked:
        return [
            Finding(
                PROBE,
                Severity.OK,
                f"the prompt is masked out of the loss: {prompt_counted} of {prompt_tokens} "
                f"prompt tokens carry loss in {structured} instruction examples",
                evidence,
                rule=RULE,
                subject=subject,
            )
        ]
    share = loss_share if loss_share is not None else token_share
    what = (
        "of the loss (the model's per-token loss)" if loss_share is not None else "of the loss-bearing tokens"
    )
    severity = Severity.FAIL if share >= FAIL_SHARE else Severity.WARN
    return [
        Finding(
            PROBE,
            severity,
            f"every prompt token carries loss in {fully_unmasked} of {structured} instruction examples: the prompt "
            f"takes {share:.0%} {what}, the answer the rest",
            evidence,
            [example] if example else [],
            ["mask-prompt-loss"],
            rule=RULE,
            subject=subject,
        )
    ]
