"""The checks ``data.collator`` applies to collated batches (tensors in, findings out).

Positions are read per row: the padding run at the tokenizer's padding side, the labels that carry
loss (``!= -100``), the final EOS, the prompt span. When the pad id is the EOS id (LLaMA scripts set
``pad_token = eos_token``) the first token of a trailing run is the real EOS, not padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "data.collator"
IGNORE = -100


def _run(seq: list[int], value: int | None, side: str) -> int:
    """Length of the run of ``value`` at the padding side of ``seq``."""
    if value is None:
        return 0
    items = reversed(seq) if side == "right" else iter(seq)
    count = 0
    for x in items:
        if x != value:
            break
        count += 1
    return count


def loss_view(tokens: list[str | None], has_loss: list[bool], keep: int = 6) -> str:
    """Tokens with loss as they are; runs without loss in brackets, long ones shortened."""
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and has_loss[j] == has_loss[i]:
            j += 1
        group = tokens[i:j]
        if has_loss[i]:
            parts.append(" ".join(str(t) for t in group))
        elif all(t is None for t in group):
            parts.append(f"[-100 ×{len(group)}]")
        else:
            shown = [str(t) for t in group if t is not None]
            text = " ".join(shown) if len(shown) <= keep else " ".join(shown[:3]) + " … " + " ".join(shown[-2:])
            parts.append(f"[no loss ×{len(group)}: {text}]")
        i = j
    return " ".join(parts)


class _Tally:
    def __init__(self) -> None:
        self.rows = 0
        self.loss_tokens = 0
        self.pad_loss_rows: list[int] = []
        self.pad_loss_positions = 0
        self.all_masked: list[int] = []
        self.attn_pad_attended: list[int] = []
        self.attn_real_hidden: list[int] = []
        self.eos_masked: list[int] = []
        self.no_eos: list[int] = []
        self.prompt_loss: list[int] = []
        self.unmasked_prompt: list[int] = []
        self.start_twice: list[int] = []
        self.length_mismatch: list[int] = []
        self.shift_mismatch: list[int] = []
        self.mlm_special_labelled = 0
        self.mlm_masked = 0
        self.mlm_maskable = 0
        self.examples: dict[int, dict[str, Any]] = {}


def analyse_batches(
    batches: list[tuple[int, Any]],
    tokenizer: Any,
    model_type: str,
    *,
    base: dict[str, Any],
    decoder_start_token_id: int | None,
    prompt_lengths: Sequence[int] | None,
    mlm_probability: float | None,
    subject: str,
) -> list[Finding]:
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    side = getattr(tokenizer, "padding_side", "right") or "right"
    # [UNK] is "special" to the tokenizer but an ordinary MLM target (collators only skip CLS/SEP/PAD…)
    specials = set(getattr(tokenizer, "all_special_ids", []) or []) - {getattr(tokenizer, "unk_token_id", None)}
    t = _Tally()
    shapes = []
    for offset, batch in batches:
        if not hasattr(batch, "get") or _rows(batch.get("input_ids")) is None:
            return [Finding(PROBE, Severity.INFO, "the collator returned no 2-D input_ids: token checks skipped",
                            evidence={**base, "keys": sorted(batch) if hasattr(batch, "keys") else str(type(batch))},
                            subject=subject)]
        ids = _rows(batch["input_ids"])
        labels = _rows(batch.get("labels"))
        attn = _rows(batch.get("attention_mask"))
        dec = _rows(batch.get("decoder_input_ids"))
        shapes.append({k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")})
        for r, row in enumerate(ids):
            g = offset + r
            t.rows += 1
            lab = labels[r] if labels is not None else None
            _check_attention(t, g, row, attn[r] if attn else None, pad, eos, side)
            if lab is None:
                continue
            loss = [x != IGNORE for x in lab]
            t.loss_tokens += sum(loss)
            if model_type == "mlm":
                _check_mlm(t, row, lab, attn[r] if attn else None, specials)
                continue
            if not any(loss):
                t.all_masked.append(g)
            if model_type == "causal" and len(lab) != len(row):
                t.length_mismatch.append(g)  # causal LMs shift inside forward(): labels align with input_ids
                continue
            if model_type == "seq2seq":
                _check_seq2seq(t, g, lab, dec[r] if dec else None, pad, eos, side, decoder_start_token_id)
                t.examples.setdefault(g, _seq2seq_example(tokenizer, row, lab, pad))
            else:
                plen = prompt_lengths[g] if prompt_lengths is not None and g < len(prompt_lengths) else None
                _check_causal(t, g, row, lab, attn[r] if attn else None, pad, eos, side, plen)
                t.examples.setdefault(g, _causal_example(tokenizer, row, lab))
    figures = {**base, "batches": len(batches), "rows": t.rows, "pad_token_id": pad, "eos_token_id": eos,
               "padding_side": side, "batch_shapes": shapes[:2]}
    if t.rows:
        figures["mean_loss_tokens_per_row"] = round(t.loss_tokens / t.rows, 2)
    return _findings(t, model_type, figures, decoder_start_token_id, mlm_probability, subject)


def _rows(value: Any) -> list[list[int]] | None:
    """A 2-D tensor/array/list as lists of ints; None for anything else (scalar class labels, None)."""
    if value is None:
        return None
    rows = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(rows, list) and rows and all(isinstance(r, list) for r in rows):
        return rows
    return None


def _check_attention(t: _Tally, g: int, row: list[int], attn: list[int] | None, pad, eos, side: str) -> None:
    if attn is None or pad is None:
        return
    run = _run(row, pad, side)
    if pad == eos and side == "right" and run:
        run -= 1  # the first trailing EOS is the real end of sequence
    n = len(row)
    padded = set(range(n - run, n)) if side == "right" else set(range(run))
    if any(attn[i] == 1 for i in padded):
        t.attn_pad_attended.append(g)
    if any(attn[i] == 0 and i not in padded and row[i] != pad for i in range(n)):
        t.attn_real_hidden.append(g)


def _check_seq2seq(t: _Tally, g: int, lab: list[int], dec: list[int] | None, pad, eos, side, start) -> None:
    body = list(lab)
    while body and body[-1] == IGNORE:
        body.pop()
    while body and body[0] == IGNORE:
        body.pop(0)
    run = _run(body, pad, "right")
    if pad == eos and run:
        run -= 1
    if run:
        t.pad_loss_rows.append(g)
        t.pad_loss_positions += run
    if start is not None and body and body[0] == start:
        t.start_twice.append(g)
    if dec is not None and start is not None:
        filled = [pad if x == IGNORE else x for x in lab]
        if dec != [start] + filled[:-1]:
            t.shift_mismatch.append(g)


def _check_causal(t: _Tally, g: int, row, lab, attn, pad, eos, side, plen) -> None:
    n = len(row)
    run = _run(row, pad, side) if pad is not None else 0
    genuine_eos = pad == eos and side == "right" and run > 0
    if genuine_eos and attn is not None and attn[n - run] == 0:
        genuine_eos = False  # the mask says the first trailing EOS is padding: the example has no EOS
    pad_start = n - run + (1 if genuine_eos else 0) if side == "right" else 0
    padded = set(range(pad_start, n)) if side == "right" else set(range(run))
    if attn is not None:
        padded |= {i for i in range(n) if attn[i] == 0}
    carrying = [i for i in padded if lab[i] != IGNORE]
    if carrying:
        t.pad_loss_rows.append(g)
        t.pad_loss_positions += len(carrying)
    start = run if side == "left" else 0
    end = (n - run + (1 if genuine_eos else 0)) if side == "right" else n
    if eos is not None and end > start:
        if row[end - 1] == eos:
            if lab[end - 1] == IGNORE:
                t.eos_masked.append(g)
        else:
            t.no_eos.append(g)
    if plen is not None:
        if any(lab[i] != IGNORE for i in range(start, min(start + plen, end))):
            t.prompt_loss.append(g)
    elif end > start and all(lab[i] != IGNORE for i in range(start, end)):
        t.unmasked_prompt.append(g)


def _check_mlm(t: _Tally, row, lab, attn, specials: set[int]) -> None:
    """A label (the original id) on padding or on a special token is a bug; count masked vs maskable."""
    for i, x in enumerate(lab):
        real = attn is None or attn[i] == 1
        labelled = x != IGNORE
        original = x if labelled else row[i]
        if labelled and (not real or original in specials):
            t.mlm_special_labelled += 1
        elif real and original not in specials:
            t.mlm_maskable += 1
            t.mlm_masked += int(labelled)


def _tokens(tokenizer: Any, ids: list[int]) -> list[str]:
    return [str(x) for x in tokenizer.convert_ids_to_tokens([int(i) for i in ids])]


def _seq2seq_example(tokenizer: Any, row: list[int], lab: list[int], pad) -> dict[str, Any]:
    toks = _tokens(tokenizer, [x for x in row if x != pad][:48])
    label_toks: list[str | None] = [None if x == IGNORE else tok for x, tok in
                                    zip(lab, _tokens(tokenizer, [0 if x == IGNORE else x for x in lab]), strict=True)]
    return {"input": " ".join(toks), "labels (loss positions)": loss_view(label_toks, [x != IGNORE for x in lab])}


def _causal_example(tokenizer: Any, row: list[int], lab: list[int]) -> dict[str, Any]:
    return {"tokens (loss positions)": loss_view(list(_tokens(tokenizer, row)), [x != IGNORE for x in lab])}


def _ex(t: _Tally, rows: list[int], n: int = 2) -> list[dict[str, Any]]:
    return [{"row": g, **t.examples[g]} for g in rows[:n] if g in t.examples]


def _findings(t: _Tally, model_type: str, figures: dict[str, Any], start, mlm_p, subject: str) -> list[Finding]:
    out: list[Finding] = []

    def add(sev: Severity, title: str, rows: list[int], rule: str, recipes: list[str] | None = None, **extra: Any) -> None:
        ev = {"rows_affected": len(rows), "rows_checked": t.rows, **extra}
        out.append(Finding(PROBE, sev, title, evidence=ev, examples=_ex(t, rows), recipes=recipes or [],
                           rule=rule, subject=subject))

    if t.pad_loss_rows:
        add(Severity.FAIL, f"labels are padded with the pad id ({figures['pad_token_id']}) instead of -100 in "
            f"{len(t.pad_loss_rows)}/{t.rows} rows: the model is trained to emit padding",
            t.pad_loss_rows, "padding positions in labels must be -100 so they carry no loss",
            ["mask-label-padding"], pad_positions_with_loss=t.pad_loss_positions,
            share_of_loss_on_padding=round(t.pad_loss_positions / max(1, t.loss_tokens), 4))
    if t.all_masked:
        add(Severity.WARN, f"{len(t.all_masked)}/{t.rows} rows have every label -100: they carry no loss at all",
            t.all_masked, "each training example needs at least one label that is not -100", ["fix-truncation"])
    if t.shift_mismatch:
        add(Severity.FAIL, f"decoder_input_ids are not the labels shifted right after start id {start} in "
            f"{len(t.shift_mismatch)}/{t.rows} rows", t.shift_mismatch,
            "decoder_input_ids == [decoder_start_token_id] + labels[:-1] (with -100 read as pad)")
    if t.start_twice:
        add(Severity.WARN, f"labels already begin with the decoder start token ({start}) in {len(t.start_twice)}/{t.rows} "
            "rows: after the shift the decoder input starts with it twice", t.start_twice,
            "labels hold the target only; the model prepends decoder_start_token_id itself")
    if t.length_mismatch:
        add(Severity.FAIL, f"labels and input_ids differ in length in {len(t.length_mismatch)}/{t.rows} rows",
            t.length_mismatch, "causal-LM labels are input_ids with masked positions; the model shifts them itself")
    if t.eos_masked:
        add(Severity.FAIL, f"the final EOS is masked (-100) in {len(t.eos_masked)}/{t.rows} rows: the model never "
            "learns to stop (pad token == EOS with a collator that masks every pad id?)", t.eos_masked,
            "the last EOS of each sequence must carry loss", eos_is_pad=figures["pad_token_id"] == figures["eos_token_id"])
    if t.no_eos and model_type == "causal":
        add(Severity.WARN, f"{len(t.no_eos)}/{t.rows} sequences do not end with EOS: generation has no learned end",
            t.no_eos, "causal-LM fine-tuning data should end each example with the EOS token", ["fix-truncation"])
    if t.prompt_loss:
        add(Severity.WARN, f"prompt tokens carry loss in {len(t.prompt_loss)}/{t.rows} rows", t.prompt_loss,
            "in instruction fine-tuning the prompt positions are -100; only the response is learned")
    if t.unmasked_prompt and model_type == "causal" and len(t.unmasked_prompt) == t.rows:
        add(Severity.INFO, "no position is masked: every token (prompt included) carries loss", t.unmasked_prompt,
            "fine for plain LM training; for prompt→response fine-tuning mask the prompt (pass --input-field/--target-field to check)")
    if t.attn_pad_attended:
        add(Severity.WARN, f"padding is attended (attention_mask 1 on pad ids) in {len(t.attn_pad_attended)}/{t.rows} rows",
            t.attn_pad_attended, "attention_mask is 0 exactly on padding; pre-padded ids need their attention_mask kept")
    if t.attn_real_hidden:
        add(Severity.WARN, f"real tokens are hidden (attention_mask 0) in {len(t.attn_real_hidden)}/{t.rows} rows",
            t.attn_real_hidden, "attention_mask is 1 on every non-pad token")
    if model_type == "mlm":
        share = t.mlm_masked / max(1, t.mlm_maskable)
        p = float(mlm_p) if mlm_p else 0.15
        figures.update(mlm_masked_share=round(share, 4), mlm_probability=p, masked_tokens=t.mlm_masked)
        if t.mlm_special_labelled:
            add(Severity.FAIL, f"{t.mlm_special_labelled} special or padding positions are MLM targets", [],
                "special tokens and padding must never be masked targets")
        if t.mlm_masked == 0:
            add(Severity.FAIL, "no token was masked: MLM has nothing to learn", [], "some tokens must be masked targets")
        elif t.mlm_maskable >= 200 and not (p / 2 <= share <= p * 2):
            add(Severity.WARN, f"{share:.1%} of tokens are masked targets, expected about {p:.0%}", [],
                "masked share within half to twice mlm_probability")
    if start is not None:
        figures["decoder_start_token_id"] = start
    elif model_type == "seq2seq":
        figures["decoder_start_token_id"] = "unknown (pass --model DIR to check the shift)"
    worst = max((f.severity for f in out), default=Severity.OK)
    title = "batches collate cleanly; labels, padding and masks are consistent" if worst == Severity.OK else "batch figures"
    out.append(Finding(PROBE, Severity.OK if worst == Severity.OK else Severity.INFO, title, evidence=figures,
                       examples=_ex(t, sorted(t.examples)[:1], 1), subject=subject))
    return out
