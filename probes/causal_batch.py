"""data.causal_labels: read real causal-LM batches and check whether padding carries loss.

A right-padded causal-LM batch whose labels are the input ids themselves (no -100 on padding, no use of the
attention mask: the form of seed 004's reproduction script) trains the model to predict ``[PAD]`` after
``[PAD]``. That is the easiest thing in the batch to learn, so the loss falls on padding while the timelines
do not converge. Measured on the tensors a collator returned: which label positions are targets (label not
the ignore index), how many of them sit where ``attention_mask`` is 0 (or, without a mask, on the pad id),
how many targets are the pad id, and, when a model is given, the share of the loss those positions carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import as_array, batch_list, rounded

PROBE = "data.causal_labels"
HF_IGNORE = -100
FAIL_SHARE = 0.05  # padding targets at or above this share of all targets fail; any at all warns
RECIPE = "mask-padding-in-loss"
RULE = (
    "a label position is a target when its label is not the ignore index (-100); a target where attention_mask "
    f"is 0 (without a mask: where the input is the pad id) is padding carrying loss: any warns, >= {FAIL_SHARE:.0%} "
    "of the targets fails"
)


def _loss_share(model: Any, batches: Sequence[Mapping[str, Any]], ignore_index: int) -> float | None:
    """Share of the summed next-token loss that padding targets carry, with the model's own logits."""
    import torch

    total = padded = 0.0
    model.eval()
    with torch.no_grad():
        for batch in batches:
            inputs = {k: v for k, v in batch.items() if k != "labels" and hasattr(v, "to")}
            logits = model(**inputs).logits[:, :-1].float()
            gold = batch["labels"][:, 1:].long()
            keep = gold.ne(ignore_index)
            nll = (
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), gold.clamp_min(0).reshape(-1), reduction="none"
                ).view_as(gold)
                * keep
            )
            pad = (
                batch["attention_mask"][:, 1:].eq(0)
                if "attention_mask" in batch
                else gold.new_zeros(gold.shape).bool()
            )
            total += float(nll.sum())
            padded += float((nll * pad).sum())
    return padded / total if total > 0 else None


def probe_causal_labels(
    batches: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    tokenizer: Any = None,
    *,
    model: Any = None,
    pad_token_id: int | None = None,
    ignore_index: int = HF_IGNORE,
    subject: str = "",
) -> list[Finding]:
    """Padding among the targets of real causal-LM batches (labels shifted by the model: position t predicts
    label t+1, so label position 0 is never a target)."""
    import numpy as np

    rows = batch_list(batches)
    if not rows:
        return [Finding(PROBE, Severity.INFO, "no causal-LM batches to check", subject=subject)]
    if pad_token_id is None and tokenizer is not None:
        pad_token_id = getattr(tokenizer, "pad_token_id", None)
    targets = on_pad = pad_label = padded_positions = affected_rows = total_rows = 0
    examples: list[dict[str, Any]] = []
    for n, batch in enumerate(rows):
        if "input_ids" not in batch or "labels" not in batch:
            return [
                Finding(
                    PROBE,
                    Severity.INFO,
                    f"batch {n} has no input_ids/labels: not a causal-LM batch",
                    evidence={"keys": sorted(map(str, batch))},
                    subject=subject,
                )
            ]
        ids = np.atleast_2d(as_array(batch["input_ids"])).astype(np.int64)
        labels = np.atleast_2d(as_array(batch["labels"])).astype(np.int64)
        if labels.shape != ids.shape:
            return [
                Finding(
                    PROBE,
                    Severity.INFO,
                    "labels are not token-level (shape differs from input_ids)",
                    evidence={"labels": list(labels.shape), "input_ids": list(ids.shape)},
                    subject=subject,
                )
            ]
        if "attention_mask" in batch:
            pad = np.atleast_2d(as_array(batch["attention_mask"])) == 0
        elif pad_token_id is not None:
            pad = ids == int(pad_token_id)
        else:
            return [
                Finding(
                    PROBE,
                    Severity.INFO,
                    "no attention_mask and no pad id: padding cannot be told apart",
                    subject=subject,
                )
            ]
        target = labels[:, 1:] != ignore_index
        hit = target & pad[:, 1:]
        targets += int(target.sum())
        on_pad += int(hit.sum())
        padded_positions += int(pad[:, 1:].sum())
        if pad_token_id is not None:
            pad_label += int((target & (labels[:, 1:] == int(pad_token_id))).sum())
        total_rows += ids.shape[0]
        affected_rows += int(hit.any(axis=1).sum())
        for r in np.flatnonzero(hit.any(axis=1))[: max(0, 3 - len(examples))]:
            real = int((~pad[r]).sum())
            examples.append(
                {
                    "batch": n,
                    "row": int(r),
                    "real_tokens": real,
                    "width": int(ids.shape[1]),
                    "padding_targets": int(hit[r].sum()),
                    "labels_on_padding": labels[r, real : real + 5].tolist(),
                }
            )
    share = on_pad / targets if targets else 0.0
    evidence: dict[str, Any] = {
        "batches": len(rows),
        "rows": total_rows,
        "targets": targets,
        "padding_positions": padded_positions,
        "padding_targets": on_pad,
        "padding_target_share": rounded(share),
        "pad_id_targets": pad_label,
        "rows_with_padding_targets": affected_rows,
    }
    if on_pad and model is not None:
        loss = _loss_share(model, rows, ignore_index)
        if loss is not None:
            evidence["padding_loss_share"] = rounded(loss)
    if not on_pad:
        return [
            Finding(
                PROBE,
                Severity.OK,
                f"No padding among the {targets} targets ({padded_positions} padding positions carry -100)",
                evidence=evidence,
                rule=RULE,
                subject=subject,
            )
        ]
    severity = Severity.FAIL if share >= FAIL_SHARE else Severity.WARN
    loss_text = (
        f"; they carry {evidence['padding_loss_share']:.0%} of the model's loss"
        if "padding_loss_share" in evidence
        else ""
    )
    return [
        Finding(
            PROBE,
            severity,
            f"Padding counted in the causal loss: {on_pad} of {targets} targets ({share:.0%}) are padding positions "
            f"in {affected_rows}/{total_rows} rows{loss_text}",
            evidence=evidence,
            examples=examples,
            recipes=[RECIPE],
            rule=RULE,
            subject=subject,
        )
    ]
