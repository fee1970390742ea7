"""Instruction records → causal-LM features for the coding task (seed 003), with the knobs the seed turned.

A record (``instruction``, ``input``, ``output`` = the SNOMED-CT id(s)) becomes a prompt (an Alpaca-style
template from the config, or the tokenizer's own chat template) and a response (the codes written in the
configured output format, inside ``response_template``). ``mask_prompt`` decides whether the prompt tokens
carry loss (-100 when masked: the default; seed 003's script let every prompt token carry loss). The
response ends with the tokenizer's EOS, which stays in the loss so the model learns to stop.
"""

from __future__ import annotations

import re
from typing import Any

from ehrdebug.errors import UserError

ALPACA = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
CODE = re.compile(r"\d{6,18}")  # a SNOMED-CT concept id: 6 to 18 digits


def expected_codes(record: dict[str, Any]) -> list[str]:
    """The record's codes in order: a list under ``codes``, else every SNOMED-like id in ``output``."""
    codes = record.get("codes")
    if isinstance(codes, list) and codes:
        return [str(c) for c in codes]
    out = record.get("output")
    if isinstance(out, list):
        return [str(c) for c in out]
    return CODE.findall(str(out or ""))


def format_answer(codes: list[str], output: dict[str, Any]) -> str:
    """Codes written as the configured format: one code or a separated list, inside the delimiters if any.

    The first code follows a space, as every later one does after ``", "``: byte-level BPE folds the space
    into the word, so a code added as a whole token (``add_code_tokens``) is one token wherever it stands."""
    body = codes[0] if output["format"] == "single" and codes else output["separator"].join(codes)
    return f"{output['open'] or ''} {body}{output['close'] or ''}"  # " 13645005": a code token registered with its space


def prompt_text(tokenizer: Any, record: dict[str, Any], config: dict[str, Any]) -> str:
    """The prompt the model sees (training and generation alike)."""
    instruction = str(record.get("instruction") or config["default_instruction"])
    note = str(record.get("input") or "")
    if config["template"] == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(
                "template: chat but the base tokenizer has no chat template; use template: alpaca"
            )
        messages = [{"role": "user", "content": f"{instruction}\n\n{note}"}]
        if config["system_prompt"]:
            messages.insert(0, {"role": "system", "content": config["system_prompt"]})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return config["alpaca_template"].format(instruction=instruction, input=note)


def response_text(record: dict[str, Any], config: dict[str, Any]) -> str:
    answer = format_answer(expected_codes(record), config["output"])
    return config["response_template"].format(answer=answer, label=record.get("label", ""))


def prompt_ids(tokenizer: Any, text: str, config: dict[str, Any]) -> list[int]:
    """Prompt token ids: BOS (unless a chat template already wrote it) then the text, no EOS after it."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos) and config["template"] != "chat":
        ids = [bos, *ids]
    return ids


def encode(tokenizer: Any, record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """One feature: ``input_ids``, ``attention_mask``, ``labels`` and ``prompt_length`` (tokens before the response)."""
    prompt = prompt_ids(tokenizer, prompt_text(tokenizer, record, config), config)
    response = tokenizer(response_text(record, config), add_special_tokens=False)["input_ids"]
    if config["add_eos"] and tokenizer.eos_token_id is not None:
        response = [*response, tokenizer.eos_token_id]
    room = int(config["max_length"]) - len(response)
    if room < 2:
        response = response[: int(config["max_length"]) - 2]
        room = 2
    if len(prompt) > room:  # keep BOS and the end of the prompt (the question and "### Response:")
        prompt = prompt[:1] + prompt[len(prompt) - room + 1 :]
    ids = prompt + response
    labels = ([-100] * len(prompt) if config["mask_prompt"] else list(prompt)) + list(response)
    return {
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "labels": labels,
        "prompt_length": len(prompt),
    }


class CausalCollator:
    """Right-pads ``input_ids`` (pad id), ``attention_mask`` (0) and ``labels`` (-100); other keys are dropped."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)

        def pad(key: str, value: int) -> Any:
            return torch.tensor(
                [list(f[key]) + [value] * (width - len(f[key])) for f in features], dtype=torch.long
            )

        return {
            "input_ids": pad("input_ids", self.pad_id),
            "attention_mask": pad("attention_mask", 0),
            "labels": pad("labels", -100),
        }


def pad_id(tokenizer: Any) -> int:
    """The pad id (a causal tokenizer without one pads with EOS, as fine-tuning scripts do)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return int(tokenizer.pad_token_id)
