"""T5 symptom → diagnosis (seed 002): ``Symptoms: fever, cough ... What is the most likely diagnosis?`` → ``Pneumonia``.

    ehrdebug train recipes/configs/t5_diagnosis_small.yaml [key=value ...]

The seed's knobs are config keys: ``task_prefix`` (train) / ``inference_prefix`` (generation),
``label_pad`` (-100 or pad), ``drop_string_columns``, and the decoding block (``num_beams``,
``repetition_penalty``, ``no_repeat_ngram_size``). ``constrain_to_labels: true`` restricts decoding to
the diagnosis names of the *training* split (a token trie through ``prefix_allowed_tokens_fn``): the
answer is always a known diagnosis, never a half-spelled one. The training loop is ``recipes.train.loop``.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ehrdebug.data.vignettes import QUESTION
from recipes.train.generate import clean_decode, generation_kwargs
from recipes.train.schema import Fraction, Key, PosInt
from recipes.train.seq2seq import SEQ2SEQ_KEYS, Seq2SeqTask

NAME = "t5_diagnosis"
ARCHITECTURE = "t5"
TASK = "diagnosis"

_NORM = re.compile(r"[^a-z0-9 ]+")


def normalize(text: str) -> str:
    return " ".join(_NORM.sub(" ", text.lower()).split())


def pairs(records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    prefix = config["task_prefix"] or ""
    return [(f"{prefix}{r['input']}", r["output"], r) for r in records]


_PHRASE_END = re.compile(r"(?<=[.,;])\s+")


def drop_phrases(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each finding (a phrase ending in ``.``, ``,`` or ``;``) dropped with probability ``rate``;
    at least one is kept, and the closing question always is (training-time augmentation)."""
    body, question = (text[: -len(QUESTION)].rstrip(), QUESTION) if text.endswith(QUESTION) else (text, "")
    phrases = [p for p in _PHRASE_END.split(body) if p]
    kept = [p for p in phrases if rng.random() >= rate]
    if phrases and not kept:
        kept = [rng.choice(phrases)]
    return " ".join([*kept, question]).strip()


def label_targets(records: list[dict[str, Any]]) -> list[str]:
    return [r["output"] for r in records]


def label_trie(tokenizer: Any, labels: list[str]) -> dict[tuple[int, ...], list[int]]:
    """Token-id prefix → the ids that may follow it, over the tokenized ``labels`` (each ends in EOS)."""
    nexts: dict[tuple[int, ...], set[int]] = {}
    for label in sorted(set(labels)):
        ids = tokenizer(text_target=label)["input_ids"]
        if not ids or ids[-1] != tokenizer.eos_token_id:
            ids = [*ids, tokenizer.eos_token_id]
        for k in range(len(ids)):
            nexts.setdefault(tuple(ids[:k]), set()).add(ids[k])
    return {key: sorted(value) for key, value in nexts.items()}


def allowed_tokens_fn(tokenizer: Any, labels: list[str]) -> Any:
    """``prefix_allowed_tokens_fn`` for ``model.generate``: only continuations of a training label."""
    trie = label_trie(tokenizer, labels)
    done = [tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id]

    def allowed(_batch_id: int, decoder_ids: Any) -> list[int]:
        return trie.get(tuple(decoder_ids.tolist()[1:]), done)  # [1:]: drop the decoder start token

    return allowed


def _training_labels(config: dict[str, Any]) -> list[str]:
    from recipes.train.data import load_records

    return label_targets(load_records(config, "train"))


def generate(model: Any, tokenizer: Any, inputs: list[str], config: dict[str, Any], device: Any, batch_size: int = 16,
             labels: list[str] | None = None) -> list[str]:  # fmt: skip
    """Decode diagnoses for ``inputs``; with ``constrain_to_labels`` only ``labels`` (default: the training split's)."""
    import torch

    prefix = config["task_prefix"] if config["inference_prefix"] is None else config["inference_prefix"]
    kwargs = generation_kwargs(tokenizer, model, config)
    if config.get("constrain_to_labels"):
        kwargs["prefix_allowed_tokens_fn"] = allowed_tokens_fn(tokenizer, labels if labels is not None else _training_labels(config))
    out: list[str] = []
    model.eval()
    for i in range(0, len(inputs), batch_size):
        chunk = [f"{prefix or ''}{x}" for x in inputs[i : i + batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=config["max_length"]).to(device)
        with torch.no_grad():
            ids = model.generate(**enc, **kwargs)
        out.extend(clean_decode(tokenizer, row.tolist()) for row in ids)
    return out


def _repeats(text: str) -> bool:
    """``Morbus Morbus`` or one word three times: seed 002's repetition."""
    words = normalize(text).split()
    return any(a == b for a, b in zip(words, words[1:], strict=False)) or any(words.count(w) >= 3 for w in set(words))


def evaluate(model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
             codes: set[str] | None = None, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
    """Exact-match accuracy (case and punctuation ignored), empty outputs, repetitions, input echoes."""
    records = records[: config["num_eval_generations"] if prefix == "eval" else config["num_test_generations"]]
    outputs = generate(model, tokenizer, [r["input"] for r in records], config, device)
    n = max(len(records), 1)
    correct = [normalize(o) == normalize(r["output"]) for o, r in zip(outputs, records, strict=True)]
    metrics = {
        f"{prefix}_accuracy": sum(correct) / n,
        f"{prefix}_empty_rate": sum(not o.strip() for o in outputs) / n,
        f"{prefix}_repetition_rate": sum(_repeats(o) for o in outputs) / n,
        f"{prefix}_echo_rate": sum(bool(o.strip()) and normalize(o) in normalize(r["input"]) for o, r in zip(outputs, records, strict=True)) / n,
    }
    samples = [
        {"prompt": r["input"], "output": o, "expected": r["output"], "correct": c}
        for r, o, c in zip(records, outputs, correct, strict=True)
    ]
    return metrics, samples


def probe_config(config: dict[str, Any]) -> Any:
    from ehrdebug.config import EhrDebugConfig

    return EhrDebugConfig(
        text_field="input", target_field="output", label_field="specialty", task_prefix=config["task_prefix"] or "",
        max_length=config["max_length"], max_target_length=config["max_target_length"],
    )  # fmt: skip


class T5Diagnosis(Seq2SeqTask):
    """The task object the training layer looks up as ``t5_diagnosis`` (recipes.train.task.TASKS)."""

    NAME, ARCHITECTURE, TASK = NAME, ARCHITECTURE, TASK
    keys = {
        **SEQ2SEQ_KEYS,
        "augment.copies": Key(PosInt, 1, "copies of each training input (the extra ones with phrases dropped)"),
        "augment.drop_phrases": Key(Fraction, 0.0, "probability of dropping each finding in a copy"),
        "constrain_to_labels": Key(bool, False, "decode only diagnosis names seen in the training split"),
    }
    defaults = {
        "base": "sample_data/bases/t5", "special_tokens": [], "register_special_tokens": False, "decoder_prompt": False,
        "data.task": "diagnosis", "generation.max_new_tokens": 24, "lora.target_modules": ["q", "v"],
    }  # fmt: skip

    def pairs(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        return pairs(records, config)

    def label_targets(self, records: list[dict[str, Any]]) -> list[str]:
        return label_targets(records)

    def drop_phrases(self, text: str, rate: float, rng: random.Random) -> str:
        return drop_phrases(text, rate, rng)

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 codes: set[str] | None = None, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        return evaluate(model, tokenizer, records, config, device, codes, prefix)

    def probe_config(self, config: dict[str, Any]) -> Any:
        return probe_config(config)


TASK_OBJECT = T5Diagnosis()


def main(argv: list[str] | None = None) -> int:
    from recipes.train.loop import recipe_main

    return recipe_main(NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())
