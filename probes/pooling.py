"""model.pooling: does a sequence classifier read padding? The same record padded to two lengths must score the same.

A classification head over a right-padded batch has to pool the last REAL token (or a [CLS] at the start).
A head that pools the last position reads a padding state whenever a row is shorter than the batch (the
seed-004 reproduction's EHRMamba head), so its output depends on which records share the batch. Measured
with the model itself: each row of a real batch is scored as the batch padded it and again trimmed to its
own length (every tensor cut at the row's last real position), in eval mode; a causal model that pools a
real token gives the same logits both ways up to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import batch_list, rounded

PROBE = "model.pooling"
RECIPE = "pool-last-real-token"
TOLERANCE = 1e-3  # absolute logit change that is more than float rounding
MAX_ROWS = 64
RULE = (
    "each padded row of real batches is scored as batched and trimmed to its own length (no padding), in eval "
    f"mode; a logit change above {TOLERANCE:g} on any padded row means the head reads padding: warns, and fails "
    "when more than half of the padded rows change"
)


def _logits(model: Any, batch: Mapping[str, Any]) -> Any:
    inputs = {k: v for k, v in batch.items() if k != "labels" and hasattr(v, "dim")}
    return model(**inputs).logits.float().reshape(len(batch["input_ids"]), -1)


def _trimmed(batch: Mapping[str, Any], row: int, length: int) -> dict[str, Any]:
    """Row ``row`` alone, every per-position tensor cut to ``length`` (other tensors: the row's entry)."""
    width = batch["input_ids"].shape[1]
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key == "labels" or not hasattr(value, "dim"):
            continue
        one = value[row : row + 1]
        out[key] = one[:, :length] if value.dim() >= 2 and value.shape[1] == width else one
    return out


def probe_pooling(
    model: Any, batches: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, subject: str = ""
) -> list[Finding]:
    """Logit change between each padded row as batched and the same row without padding."""
    import torch

    rows = batch_list(batches)
    if not rows or any("attention_mask" not in b or "input_ids" not in b for b in rows):
        return [
            Finding(
                PROBE,
                Severity.INFO,
                "no batches with input_ids and attention_mask to test pooling on",
                subject=subject,
            )
        ]
    model.eval()
    checked = changed = 0
    worst = 0.0
    examples: list[dict[str, Any]] = []
    with torch.no_grad():
        for n, batch in enumerate(rows):
            lengths = batch["attention_mask"].long().sum(dim=1)
            width = int(batch["input_ids"].shape[1])
            padded = [int(r) for r in torch.nonzero(lengths < width).flatten()][: MAX_ROWS - checked]
            if not padded:
                continue
            full = _logits(model, batch)
            for r in padded:
                alone = _logits(model, _trimmed(batch, r, int(lengths[r])))[0]
                delta = float((full[r] - alone).abs().max())
                checked += 1
                worst = max(worst, delta)
                if delta > TOLERANCE:
                    changed += 1
                    if len(examples) < 3:
                        examples.append(
                            {
                                "batch": n,
                                "row": r,
                                "real_tokens": int(lengths[r]),
                                "padded_to": width,
                                "logit_padded": rounded(float(full[r][0])),
                                "logit_alone": rounded(float(alone[0])),
                                "change": rounded(delta),
                            }
                        )
            if checked >= MAX_ROWS:
                break
    evidence = {
        "padded_rows_checked": checked,
        "rows_changed": changed,
        "max_logit_change": rounded(worst, 6),
        "tolerance": TOLERANCE,
        "model": type(model).__name__,
    }
    pooling = getattr(getattr(model, "config", None), "pooling", None)
    if pooling is not None:
        evidence["config_pooling"] = pooling  # reported for the reader; the verdict is the measurement
    if not checked:
        return [
            Finding(
                PROBE,
                Severity.INFO,
                "no padded row in the batches: pooling of padding cannot be tested",
                evidence=evidence,
                rule=RULE,
                subject=subject,
            )
        ]
    if not changed:
        return [
            Finding(
                PROBE,
                Severity.OK,
                f"Padding does not change the classifier's output ({checked} padded rows, max change {worst:.2g})",
                evidence=evidence,
                rule=RULE,
                subject=subject,
            )
        ]
    severity = Severity.FAIL if changed > checked / 2 else Severity.WARN
    return [
        Finding(
            PROBE,
            severity,
            f"The classifier reads padding: {changed} of {checked} padded rows score differently without their padding "
            f"(max logit change {worst:.3g}); the head pools a padding position, not the last real token",
            evidence=evidence,
            examples=examples,
            recipes=[RECIPE],
            rule=RULE,
            subject=subject,
        )
    ]
