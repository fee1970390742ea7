"""Sampler logic: generations under chosen decoding settings with per-step top-k probabilities.

Probabilities are the model's own (softmax of the raw logits, before temperature/top-k/penalties), so
"P(<v>) after the prompt = 0.000045" reads the same as in seed 000 whatever the decoding settings.
Generation stops between steps when ``should_stop()`` turns true, which is how the TUI cancels it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Settings:
    num_samples: int = 3
    max_new_tokens: int = 32
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    num_beams: int = 1
    repetition_penalty: float = 1.0
    block_eos: bool = False  # seed 000's bad_words_ids=[[eos]]
    seed: int = 0

    @classmethod
    def parse(cls, values: dict[str, str]) -> Settings:
        """From the form's strings; a ValueError names the field that is wrong."""
        out = cls()
        for name, raw in values.items():
            current = getattr(out, name)
            try:
                if isinstance(current, bool):
                    value: Any = str(raw).strip().lower() in ("1", "true", "yes", "y", "on")
                elif isinstance(current, int):
                    value = int(raw)
                else:
                    value = float(raw)
            except ValueError as exc:
                raise ValueError(f"{name}: {raw!r} is not a number") from exc
            setattr(out, name, value)
        if out.num_samples < 1 or out.max_new_tokens < 1 or out.num_beams < 1:
            raise ValueError("samples, max tokens and beams must be at least 1")
        if out.do_sample and out.temperature <= 0:
            raise ValueError("temperature must be positive when sampling")
        return out


@dataclass
class Step:
    chosen: str
    chosen_prob: float
    top: list[tuple[str, float]]
    watch: dict[str, float] = field(default_factory=dict)


@dataclass
class Generation:
    text: str
    steps: list[Step] = field(default_factory=list)


def load_model(path: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint through the one core loader (``ehrdebug.loading.load_model``)."""
    from ehrdebug.loading import load_model as _load

    return _load(path)


def watch_ids(tokenizer: Any, tokens: Sequence[str]) -> dict[str, int]:
    """Tokens to follow step by step (structural tokens, the EOS) that exist as single ids."""
    from probes.special_tokens import single_token_id

    out: dict[str, int] = {}
    for token in tokens:
        tid = single_token_id(tokenizer, token)
        if tid is not None:
            out[token] = tid
    if tokenizer.eos_token is not None and tokenizer.eos_token_id is not None:
        out.setdefault(f"EOS {tokenizer.eos_token}", int(tokenizer.eos_token_id))
    return out


def generate(
    model: Any,
    tokenizer: Any,
    prompt: str,
    settings: Settings,
    watch: Sequence[str] = (),
    k: int = 5,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Generation]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from probes.special_tokens import is_seq2seq, model_device

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = bool(should_stop())
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    torch.manual_seed(settings.seed)
    device = model_device(model)
    enc = tokenizer(prompt, return_tensors="pt").to(device)
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "num_beams": settings.num_beams,
        "num_return_sequences": settings.num_samples
        if (settings.do_sample or settings.num_beams >= settings.num_samples)
        else 1,
        "repetition_penalty": settings.repetition_penalty,
        "return_dict_in_generate": True,
        "output_logits": True,
        "stopping_criteria": StoppingCriteriaList([_Stop()]),
        "pad_token_id": tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
    }
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p)
    if settings.block_eos and tokenizer.eos_token_id is not None:
        kwargs["bad_words_ids"] = [[int(tokenizer.eos_token_id)]]
    with torch.no_grad():
        out = model.generate(**enc, **kwargs)
    sequences = out.sequences
    start = 0 if is_seq2seq(model) else enc["input_ids"].shape[1]
    watched = watch_ids(tokenizer, watch)
    gens: list[Generation] = []
    per_step = settings.num_beams == 1 and getattr(out, "logits", None) is not None
    for row in range(sequences.shape[0]):
        new_ids = sequences[row, start:].tolist()
        pad = tokenizer.pad_token_id
        while new_ids and pad is not None and new_ids[-1] == pad and len(new_ids) > 1:
            new_ids.pop()  # a row that ended early is padded to the longest one
        gen = Generation(text=tokenizer.decode(new_ids, skip_special_tokens=False).strip())
        if per_step:
            offset = sequences.shape[1] - start - len(out.logits)  # seq2seq: the decoder start id comes first
            for s, logits in enumerate(out.logits):
                probs = torch.softmax(logits[row].float(), dim=-1)
                pos = s + offset
                if pos >= len(new_ids):
                    break
                chosen = int(new_ids[pos])
                values, ids = torch.topk(probs, min(k, probs.shape[-1]))
                gen.steps.append(
                    Step(
                        chosen=_piece(tokenizer, chosen),
                        chosen_prob=float(probs[chosen]),
                        top=[
                            (_piece(tokenizer, int(i)), float(v))
                            for v, i in zip(values.tolist(), ids.tolist(), strict=True)
                        ],
                        watch={name: float(probs[tid]) for name, tid in watched.items()},
                    )
                )
        gens.append(gen)
    return gens


def _piece(tokenizer: Any, token_id: int) -> str:
    tok = tokenizer.convert_ids_to_tokens(int(token_id))
    return str(tok) if tok is not None else f"<id {token_id}>"
