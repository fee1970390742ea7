"""data.collator: build real batches with the collator the run uses and read what carries loss.

Nothing is inferred from names: the collator is called on the user's features (so seed 002's
``ValueError: Unable to create tensor … (`input` in this case)`` happens here, before training), and
every check reads the tensors it returned: pad ids inside labels, rows with no loss at all, the
decoder input the model will build from the labels, whether the prompt is masked and the final EOS
kept for causal-LM fine-tuning, and whether the attention mask hides exactly the padding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.data_collator_checks import analyse_batches

PROBE = "data.collator"
MODEL_TYPES = ("seq2seq", "causal", "mlm")
TRAINER_NOTE = (
    "HF Trainer drops columns its model's forward() does not name when remove_unused_columns=True (the "
    "default), so the crash shows when the collator is called directly, in a custom loop, or with "
    "remove_unused_columns=False"
)


def _kind(value: Any) -> str | None:
    """Why ``value`` cannot become a tensor, or None when it can."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return None if str(getattr(value, "dtype", "")) not in ("object",) else "object array"
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        inner = {_kind(v) for v in value[:64]}
        inner.discard(None)
        return f"list of {inner.pop()}" if inner else None
    return type(value).__name__


def non_tensor_columns(features: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Columns holding values a collator cannot turn into tensors (strings, None, dicts), with their kind."""
    found: dict[str, str] = {}
    for feature in features:
        for key, value in feature.items():
            if key not in found:
                kind = _kind(value)
                if kind:
                    found[key] = kind
    return found


def standard_collator(tokenizer: Any, model_type: str, features: Sequence[Mapping[str, Any]]) -> tuple[Callable, str]:
    """The collator a typical script uses for this model type (see module docstring of each choice)."""
    from transformers import DataCollatorForLanguageModeling, DataCollatorForSeq2Seq

    if model_type not in MODEL_TYPES:
        from ehrdebug.errors import UserError

        raise UserError(f"unknown model type {model_type!r} (expected one of: {', '.join(MODEL_TYPES)})")
    if model_type == "seq2seq":
        return DataCollatorForSeq2Seq(tokenizer), "DataCollatorForSeq2Seq"
    if model_type == "causal":
        if features and "labels" in features[0]:
            # SFT scripts that build their own labels (alpaca-lora style) pad them with -100 this way
            return DataCollatorForSeq2Seq(tokenizer, padding=True), "DataCollatorForSeq2Seq (causal SFT)"
        return DataCollatorForLanguageModeling(tokenizer, mlm=False), "DataCollatorForLanguageModeling(mlm=False)"
    if getattr(tokenizer, "mask_token", None) is None:
        from ehrdebug.errors import UserError

        raise UserError("the tokenizer has no mask token, so masked-LM collation is impossible (add one, e.g. [MASK])")
    return DataCollatorForLanguageModeling(tokenizer, mlm=True, seed=0), "DataCollatorForLanguageModeling(mlm=True)"


def _collate(collator: Callable, features: Sequence[Mapping[str, Any]], batch_size: int, max_batches: int):
    batches = []
    for start in range(0, min(len(features), batch_size * max_batches), batch_size):
        chunk = [dict(f) for f in features[start:start + batch_size]]
        batches.append((start, collator(chunk)))
    return batches


def probe_collator(
    features: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    model_type: str,
    *,
    collator: Callable | None = None,
    collator_name: str | None = None,
    decoder_start_token_id: int | None = None,
    prompt_lengths: Sequence[int] | None = None,
    batch_size: int = 8,
    max_batches: int = 4,
    subject: str = "",
) -> list[Finding]:
    """Call the collator on real features and check the batches it returns."""
    if not features:
        from ehrdebug.errors import UserError

        raise UserError("no examples to collate")
    if collator is None:
        collator, name = standard_collator(tokenizer, model_type, features)
    else:
        name = collator_name or getattr(collator, "__name__", type(collator).__name__)
    sample = list(features[: batch_size * max_batches])
    strays = non_tensor_columns(sample)
    findings: list[Finding] = []
    base = {"collator": name, "model_type": model_type, "batch_size": batch_size}
    try:
        batches = _collate(collator, sample, batch_size, max_batches)
    except Exception as exc:  # noqa: BLE001 - any collator failure is the finding
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        if not strays:
            return [Finding(PROBE, Severity.FAIL, f"the collator crashed on the first batch: {error[:160]}",
                            evidence={**base, "error": error, "columns": sorted(sample[0])}, subject=subject,
                            rule="the collator must turn every batch of the dataset into tensors")]
        cols = ", ".join(f"{k} ({v})" for k, v in strays.items())
        without = [{k: v for k, v in f.items() if k not in strays} for f in sample]
        try:
            batches = _collate(collator, without, batch_size, max_batches)
        except Exception as exc2:  # noqa: BLE001 - the columns were not (only) the cause
            error2 = f"{type(exc2).__name__}: {str(exc2).splitlines()[0][:300] if str(exc2) else ''}"
            return [Finding(PROBE, Severity.FAIL, f"the collator crashed, with or without the non-tensor column(s) {cols}",
                            evidence={**base, "error": error, "error_without_those_columns": error2,
                                      "non_tensor_columns": strays}, recipes=["remove-string-columns"],
                            rule="the collator must turn every batch of the dataset into tensors", subject=subject)]
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"the collator crashes on non-tensor column(s) {cols}: remove them before training",
            evidence={**base, "error": error, "non_tensor_columns": strays,
                      "tensor_columns": [k for k in sample[0] if k not in strays], "note": TRAINER_NOTE},
            examples=[{k: _short(sample[0][k]) for k in strays}],
            rule="every column handed to the collator must be numeric (ids, masks, labels); without them it collates",
            recipes=["remove-string-columns"], subject=subject,
        ))
        base["checked_after_removing"] = sorted(strays)
    else:
        if strays:
            findings.append(Finding(
                PROBE, Severity.INFO, f"non-tensor column(s) {', '.join(strays)} are ignored by this collator",
                evidence={**base, "non_tensor_columns": strays}, recipes=["remove-string-columns"],
                rule="the standard collators crash on them; this one skips them", subject=subject,
            ))
    if decoder_start_token_id is None and model_type == "seq2seq":
        decoder_start_token_id = _guess_start(batches)
    findings.extend(analyse_batches(
        batches, tokenizer, model_type, base=base, decoder_start_token_id=decoder_start_token_id,
        prompt_lengths=prompt_lengths, mlm_probability=getattr(collator, "mlm_probability", None), subject=subject,
    ))
    return findings


def _guess_start(batches: list[tuple[int, Any]]) -> int | None:
    """The decoder start id a user collator already put in decoder_input_ids (all rows agree), if any."""
    firsts = set()
    for _, batch in batches:
        dec = batch.get("decoder_input_ids") if hasattr(batch, "get") else None
        if dec is None:
            return None
        firsts.update(int(x) for x in dec[:, 0].tolist())
    return firsts.pop() if len(firsts) == 1 else None


def _short(value: Any) -> Any:
    return value[:80] + "…" if isinstance(value, str) and len(value) > 80 else value
