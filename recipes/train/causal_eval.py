"""Generation and scoring of the coding task: what a loss cannot tell (seed 003: loss 0.05, 0% strict accuracy).

Post-processing parses each answer in the configured format (one code, a separated list, optional
delimiters such as ``<code>…</code>``): an answer that parses is *format-valid*; strict accuracy is a
valid answer whose code set equals the reference set. Code-level precision/recall/F1 count the codes the
post-processing extracts (the parsed ones; from an invalid answer every SNOMED-like id in it), so "the
right code inside extra text" shows as F1 without strict accuracy.
"""

from __future__ import annotations

import re
from typing import Any

from recipes.train.causal_data import CODE, expected_codes, prompt_ids, prompt_text


def parse_answer(text: str, output: dict[str, Any]) -> tuple[bool, list[str]]:
    """(format-valid, codes): the strict parse of ``text`` in the configured format."""
    body = text.strip()
    opening, closing = (output["open"] or "").strip(), (output["close"] or "").strip()
    if opening or closing:
        if not (body.startswith(opening) and body.endswith(closing)) or len(body) < len(opening) + len(
            closing
        ):
            return False, CODE.findall(body)
        body = body[len(opening) : len(body) - len(closing)].strip()
    if output["format"] == "single":
        return (True, [body]) if CODE.fullmatch(body) else (False, CODE.findall(body))
    separator = output["separator"].strip() or output["separator"]
    items = [item.strip() for item in body.split(separator)] if separator else [body]
    if items and all(CODE.fullmatch(item) for item in items):
        return True, items
    return False, CODE.findall(body)


def score(outputs: list[str], references: list[list[str]], output: dict[str, Any]) -> dict[str, float]:
    """strict_accuracy, format_validity and micro code precision/recall/F1 over the parsed answers."""
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    parsed = [parse_answer(o, output) for o in outputs]
    n = max(len(outputs), 1)
    strict = sum(
        valid and set(codes) == set(ref) for (valid, codes), ref in zip(parsed, references, strict=True)
    )
    binarizer = MultiLabelBinarizer().fit([set(c) for _, c in parsed] + [set(r) for r in references])
    y_pred = binarizer.transform([set(c) for _, c in parsed])
    y_true = binarizer.transform([set(r) for r in references])
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    return {
        "strict_accuracy": strict / n,
        "format_validity": sum(v for v, _ in parsed) / n,
        "code_precision": float(p),
        "code_recall": float(r),
        "code_f1": float(f),
    }


def generation_kwargs(tokenizer: Any, config: dict[str, Any]) -> dict[str, Any]:
    g = config["generation"]
    kwargs: dict[str, Any] = {
        "max_new_tokens": int(g["max_new_tokens"]),
        "do_sample": bool(g["do_sample"]),
        "num_beams": int(g["num_beams"]),
        "repetition_penalty": float(g["repetition_penalty"]),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if g["do_sample"]:
        kwargs.update(temperature=float(g["temperature"]), top_k=int(g["top_k"]), top_p=float(g["top_p"]))
    return kwargs


def generate(model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
             batch_size: int = 32) -> list[str]:  # fmt: skip
    """The answers (new tokens only, added tokens such as ``<code>`` kept) to each record's prompt, left-padded."""
    import torch

    kwargs = generation_kwargs(tokenizer, config)
    pad = tokenizer.pad_token_id
    drop = {pad, tokenizer.eos_token_id, tokenizer.bos_token_id}
    limit = int(config["max_length"]) - int(kwargs["max_new_tokens"])
    out: list[str] = []
    model.eval()
    for i in range(0, len(records), batch_size):
        prompts = [
            prompt_ids(tokenizer, prompt_text(tokenizer, r, config), config)
            for r in records[i : i + batch_size]
        ]
        prompts = [p if len(p) <= limit else p[:1] + p[len(p) - limit + 1 :] for p in prompts]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        with torch.no_grad():
            generated = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        for row in generated[:, width:].tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
            text = tokenizer.decode([t for t in row if t not in drop], skip_special_tokens=False)
            out.append(re.sub(r"\s+", " ", text).strip())
    return out


def evaluate(model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
             prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
    """``<prefix>_strict_accuracy``, ``_format_validity``, ``_code_precision/recall/f1`` and samples."""
    limit = config["num_eval_generations"] if prefix == "eval" else config["num_test_generations"]
    records = records[:limit] if limit else records
    outputs = generate(model, tokenizer, records, config, device)
    references = [expected_codes(r) for r in records]
    metrics = {f"{prefix}_{k}": v for k, v in score(outputs, references, config["output"]).items()}
    samples = []
    for r, o, ref in zip(records, outputs, references, strict=True):
        valid, codes = parse_answer(o, config["output"])
        samples.append(
            {
                "prompt": r.get("input", ""),
                "output": o,
                "expected": " ".join(ref),
                "correct": valid and set(codes) == set(ref),
            }
        )
    return metrics, samples
