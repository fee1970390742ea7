"""BART synthetic-EHR generation (seed 000): ``56 ASIAN M <demo>`` → ``<v> V3001 250.00 <\\v> ... <END>``.

    ehrdebug train recipes/configs/bart_ehrgen_small.yaml [key=value ...]
    python -m recipes.train.bart_ehrgen recipes/configs/bart_ehrgen_small.yaml epochs=3

The encoder reads the demographics prompt. As in the seed, the decoder writes the whole record
(``decoder_prompt: true``): at generation it is primed with the prompt and continues after ``<demo>``,
which is exactly where a pretrained prior (copy the input, then ``</s>``) competes with ``<v>``.
This module holds what is specific to the task; the training loop is ``recipes.train.loop``.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.grammar import STRUCTURAL_TOKENS, VISIT_OPEN, parse_sequence, score_generations
from recipes.train.generate import clean_decode, continuation_probability, generation_kwargs
from recipes.train.seq2seq import Seq2SeqTask

NAME = "bart_ehrgen"
ARCHITECTURE = "bart"
TASK = "seq2seq"


def pairs(records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(encoder text, decoder text, record): the decoder writes the full line or only the visits."""
    key = "text" if config["decoder_prompt"] else "target"
    return [(r["prompt"], r[key] if key in r else f"{r['prompt']} {r['target']}", r) for r in records]


def label_targets(records: list[dict[str, Any]]) -> list[str]:
    return [r["target"] for r in records]


def decoder_prefix(tokenizer: Any, model: Any, prompt: str, config: dict[str, Any]) -> list[int]:
    """What the decoder has seen when it must write the first visit: [start, <s>, prompt tokens...]."""
    ids = tokenizer(text_target=prompt if config["decoder_prompt"] else "")["input_ids"]
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return [model.config.decoder_start_token_id] + ids


def p_visit_after_demo(model: Any, tokenizer: Any, prompt: str, config: dict[str, Any], device: Any) -> tuple[float, float]:
    """P(`` <v>`` | encoder prompt, decoder at ``<demo>``) — the chain probability of its pieces if
    ``<v>`` is fragmented — and P(pretrained EOS) at the same step."""
    before = prompt if config["decoder_prompt"] else ""
    prefix = decoder_prefix(tokenizer, model, prompt, config)
    full = tokenizer(text_target=f"{before} {VISIT_OPEN}".strip())["input_ids"]
    full = full[:-1] if full[-1] == tokenizer.eos_token_id else full
    continuation = full[len(prefix) - 1 :]
    return continuation_probability(model, tokenizer, prompt, prefix, continuation, device)


def generate(model: Any, tokenizer: Any, prompts: list[str], config: dict[str, Any], device: Any) -> list[str]:
    """Full generated records (prompt included), batched by decoder-prefix length."""
    import torch

    kwargs = generation_kwargs(tokenizer, model, config)
    prefixes = [decoder_prefix(tokenizer, model, p, config) for p in prompts]
    out: list[str] = [""] * len(prompts)
    groups: dict[int, list[int]] = {}
    for i, prefix in enumerate(prefixes):
        groups.setdefault(len(prefix), []).append(i)
    model.eval()
    for idx in groups.values():
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True).to(device)
        dec = torch.tensor([prefixes[i] for i in idx], device=device)
        with torch.no_grad():
            ids = model.generate(**enc, decoder_input_ids=dec, **kwargs)
        for row, i in enumerate(idx):
            text = clean_decode(tokenizer, ids[row].tolist())
            out[i] = text if config["decoder_prompt"] else f"{prompts[i]} {text}"
    return out


def evaluate(model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
             codes: set[str] | None, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
    """Generation metrics on ``records``: grammar validity, real-code rate, P(<v> | <demo>), P(EOS)."""
    records = records[: config["num_eval_generations"] if prefix == "eval" else config["num_test_generations"]]
    prompts = [r["prompt"] for r in records]
    texts = generate(model, tokenizer, prompts, config, device)
    score = score_generations(texts, codes)
    probs = [p_visit_after_demo(model, tokenizer, p, config, device) for p in prompts[:8]]
    metrics = {
        f"{prefix}_structural_validity": score.structurally_valid,
        f"{prefix}_valid_code_rate": score.valid_code_rate,
        f"{prefix}_codes_generated": score.codes_generated,
        f"{prefix}_p_visit_after_demo": sum(p for p, _ in probs) / max(len(probs), 1),
        f"{prefix}_p_eos_after_demo": sum(e for _, e in probs) / max(len(probs), 1),
    }
    samples = []
    for prompt, text in zip(prompts, texts, strict=True):
        parsed = parse_sequence(text)
        samples.append({"prompt": prompt, "output": text, "valid": parsed.valid, "reason": parsed.reason})
    return metrics, samples


def probe_config(config: dict[str, Any]) -> Any:
    from ehrdebug.config import EhrDebugConfig

    return EhrDebugConfig(
        structural_tokens=list(STRUCTURAL_TOKENS), end_token=config["generation"]["eos"] or "<END>",
        text_field="prompt", target_field="target", patient_field="patient_id",
        # with decoder_prompt the longest sequence the model sees is the decoder's whole record
        max_length=max(config["max_length"], config["max_target_length"] if config["decoder_prompt"] else 0),
        max_target_length=config["max_target_length"],
    )  # fmt: skip


class BartEhrGen(Seq2SeqTask):
    """The task object the training layer looks up as ``bart_ehrgen`` (recipes.train.task.TASKS)."""

    NAME, ARCHITECTURE, TASK = NAME, ARCHITECTURE, TASK
    defaults = {"base": "sample_data/bases/bart"}

    def pairs(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        return pairs(records, config)

    def label_targets(self, records: list[dict[str, Any]]) -> list[str]:
        return label_targets(records)

    def token_info(self, tokenizer: Any, info: dict[str, Any]) -> dict[str, Any]:
        from recipes.train.tokens import fragments

        return {**info, "demo_pieces": fragments(tokenizer, "56 ASIAN M <demo>")}

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 codes: set[str] | None = None, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        return evaluate(model, tokenizer, records, config, device, codes if codes is not None else self.codes(config), prefix)

    def probe_config(self, config: dict[str, Any]) -> Any:
        return probe_config(config)


TASK_OBJECT = BartEhrGen()


def main(argv: list[str] | None = None) -> int:
    from recipes.train.loop import recipe_main

    return recipe_main(NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())
