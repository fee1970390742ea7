"""Tiny models, tokenizers and data for the model/generation probe tests.

Every failure the tests need is produced for real by a short CPU training run (a copy-pretrained BART
that ignores new tokens, a causal LM whose pretrained EOS follows ``<demo>``, a T5 trained with unmasked
padding that emits only PAD, ...). Builders are cached per process so tests share the trained models.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import pytest


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models train ~30x faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

CODES = ["V3001", "V053", "250.00", "486", "401.9", "428.0", "427.31", "584.9", "599.0", "518.81", "038.9", "276.2"]
ETHNICITIES = ["ASIAN", "WHITE", "BLACK", "HISPANIC"]
NEW_TOKENS = ["<v>", "<\\v>", "<END>"]
BASE_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def ehr_line(rng: random.Random) -> str:
    """``56 ASIAN M <demo> <v> V3001 250.00 <\\v> <END>``; codes depend on sex so a model can learn them."""
    sex = rng.choice("MF")
    pool = CODES[:6] if sex == "M" else CODES[6:]
    visits = " ".join(f"<v> {' '.join(rng.sample(pool, rng.randint(1, 2)))} <\\v>" for _ in range(rng.randint(1, 2)))
    return f"{rng.randint(20, 90)} {rng.choice(ETHNICITIES)} {sex} <demo> {visits} <END>"


def ehr_examples(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        head, _, tail = ehr_line(rng).partition("<demo>")
        out.append({"prompt": f"{head.strip()} <demo>", "target": tail.strip()})
    return out


def word_tokenizer(corpus: list[str], style: str = "bart", added: list[str] | None = None) -> Any:
    """A whitespace word-level tokenizer; ``added`` tokens are registered afterwards (ids beyond the base)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=BASE_SPECIALS))
    if style == "bart":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
        )
    elif style == "t5":
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    elif style == "causal":
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    if added:
        fast.add_special_tokens({"additional_special_tokens": list(added)})
    return fast


def tiny_bart(vocab_size: int, seed: int = 0) -> Any:
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    cfg = BartConfig(
        vocab_size=vocab_size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None,
        dropout=0.0, attention_dropout=0.0,
    )
    return BartForConditionalGeneration(cfg)


def tiny_t5(vocab_size: int, seed: int = 0) -> Any:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=vocab_size, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=0, eos_token_id=2, decoder_start_token_id=0, dropout_rate=0.0,
    )
    return T5ForConditionalGeneration(cfg)


def tiny_llama(vocab_size: int, seed: int = 0, layers: int = 1, tie: bool = False) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        tie_word_embeddings=tie,
    )
    return LlamaForCausalLM(cfg)


def tiny_mamba(vocab_size: int = 64, seed: int = 0) -> Any:
    import torch
    from transformers import MambaConfig, MambaForCausalLM

    torch.manual_seed(seed)
    return MambaForCausalLM(MambaConfig(vocab_size=vocab_size, hidden_size=32, state_size=8, num_hidden_layers=1))


def train_seq2seq(
    model: Any, tok: Any, pairs: list[tuple[str, str]], steps: int, lr: float = 3e-3, mask_pad: bool = True,
    batch: int = 16, seed: int = 0, max_target_length: int | None = None, eos_in_labels: bool = True,
) -> Any:
    """Plain teacher-forced training; ``mask_pad=False`` reproduces seed 002's unmasked PAD labels and
    ``eos_in_labels=False`` targets tokenized without special tokens (the model never sees its end token)."""
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    with one_thread():
        _seq2seq_steps(model, tok, pairs, steps, opt, rng, batch, mask_pad, max_target_length, eos_in_labels)
    model.eval()
    return model


def _seq2seq_steps(model: Any, tok: Any, pairs: list[tuple[str, str]], steps: int, opt: Any, rng: random.Random,
                   batch: int, mask_pad: bool, max_target_length: int | None, eos_in_labels: bool = True) -> None:
    for _ in range(steps):
        chunk = [pairs[rng.randrange(len(pairs))] for _ in range(batch)]
        enc = tok([p for p, _ in chunk], return_tensors="pt", padding=True)
        lab = tok(text_target=[t for _, t in chunk], return_tensors="pt", padding="max_length" if max_target_length else True,
                  max_length=max_target_length, truncation=bool(max_target_length), add_special_tokens=eos_in_labels)["input_ids"]
        if mask_pad:
            lab = lab.masked_fill(lab == tok.pad_token_id, -100)
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def train_causal(model: Any, tok: Any, texts: list[str], steps: int, lr: float = 3e-3, batch: int = 16, seed: int = 0) -> Any:
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    model.train()
    with one_thread():
        for _ in range(steps):
            chunk = [texts[rng.randrange(len(texts))] for _ in range(batch)]
            enc = tok(chunk, return_tensors="pt", padding=True)
            lab = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=lab).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Autouse in the model tests (imported there): contended threads make tiny-model steps ~30x slower."""
    with one_thread():
        yield


# ------------------------------------------------------------------ cached scenarios
def _ehr_corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [ehr_line(rng) for _ in range(n)]


def _pretraining_lines(n: int = 300, seed: int = 1) -> list[str]:
    """Demographics and codes without the structural visit tokens: what the 'pretrained' model saw."""
    rng = random.Random(seed)
    return [f"{rng.randint(20, 90)} {rng.choice(ETHNICITIES)} {rng.choice('MF')} <demo> {' '.join(rng.sample(CODES, 2))}" for _ in range(n)]


@lru_cache(maxsize=1)
def copy_pretrained_bart() -> tuple[Any, Any]:
    """A BART 'pretrained' as a copy autoencoder (the denoising prior) on a vocabulary without <v>/<END>."""
    lines = _pretraining_lines() + [ln.replace("<v> ", "").replace(" <\\v>", "").replace(" <END>", "") for ln in _ehr_corpus()]
    tok = word_tokenizer(lines, "bart")
    model = train_seq2seq(tiny_bart(len(tok)), tok, [(ln, ln) for ln in lines], steps=150, lr=1e-2)
    return model, tok


@lru_cache(maxsize=2)
def bart_with_new_tokens(init: str, steps: int) -> tuple[Any, Any, int, dict[str, Any]]:
    """Copy-pretrained BART + <v> <\\v> <END> (``random`` or ``mean`` init) fine-tuned ``steps`` on the EHR task.

    Returns (model, tokenizer, base_vocab_size, state_dict right after resizing).
    """
    import copy

    base_model, base_tok = copy_pretrained_bart()
    model = copy.deepcopy(base_model)
    tok = copy.deepcopy(base_tok)
    base = len(tok)
    tok.add_special_tokens({"additional_special_tokens": NEW_TOKENS})
    model.resize_token_embeddings(len(tok), mean_resizing=(init == "mean"))
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pairs = [(e["prompt"], e["target"]) for e in ehr_examples(300, seed=3)]
    if steps:
        train_seq2seq(model, tok, pairs, steps=steps, lr=3e-3 if steps > 50 else 3e-4)
    model.eval()
    return model, tok, base, start


@lru_cache(maxsize=1)
def eos_pretrained_llama() -> tuple[Any, Any]:
    """A causal LM 'pretrained' on documents that end right after ``<demo>`` with its own EOS ``</s>``."""
    rng = random.Random(5)
    docs = [f"{rng.randint(20, 90)} {rng.choice(ETHNICITIES)} {rng.choice('MF')} <demo> </s>" for _ in range(200)]
    tok = word_tokenizer(docs + [" ".join(CODES)], "causal")
    return train_causal(tiny_llama(len(tok)), tok, docs, steps=120, lr=1e-2), tok


@lru_cache(maxsize=2)
def llama_with_new_tokens(steps: int) -> tuple[Any, Any, int, dict[str, Any]]:
    """EOS-pretrained causal LM + <v> <\\v> <END> (mean init), fine-tuned ``steps`` on full EHR lines."""
    import copy

    base_model, base_tok = eos_pretrained_llama()
    model, tok = copy.deepcopy(base_model), copy.deepcopy(base_tok)
    base = len(tok)
    tok.add_special_tokens({"additional_special_tokens": NEW_TOKENS})
    model.resize_token_embeddings(len(tok), mean_resizing=True)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if steps:
        train_causal(model, tok, [f"{ln} </s>" for ln in _ehr_corpus(300, seed=4)], steps=steps, lr=3e-3 if steps > 50 else 1e-3)
    return model, tok, base, start


# ------------------------------------------------------------------ T5 diagnosis (seed 002)
DIAGNOSES = {
    "Pneumonia": ["fever,", "cough,", "infiltrate", "CRP", "crackles,"],
    "Pulmonary embolism": ["dyspnea,", "leg", "swelling,", "D-Dimer", "tachycardia,"],
    "Anemia": ["fatigue,", "pallor,", "low", "Hb,", "dizziness,"],
    "Myocardial infarction": ["chest", "pain,", "troponin,", "ST-elevation,", "sweating,"],
    "Diabetes mellitus": ["polyuria,", "polydipsia,", "glucose", "320,", "thirst,"],
    "Meningitis": ["headache,", "meningismus,", "photophobia,", "stiff", "neck,"],
}
PREFIX = "medical diagnosis:"
QUESTION = "What is the most likely diagnosis?"


def diagnosis_examples(n: int, seed: int = 0, preamble: str = "") -> list[dict[str, str]]:
    rng = random.Random(seed)
    names = list(DIAGNOSES)
    out = []
    for _ in range(n):
        dx = rng.choice(names)
        symptoms = rng.sample(DIAGNOSES[dx], 3)
        out.append({"input": f"{preamble}Symptoms: {' '.join(symptoms)} {QUESTION}", "output": dx})
    return out


def _t5_tokenizer() -> Any:
    corpus = [f"{PREFIX} Patient presents to the clinic. Symptoms: {QUESTION} {' '.join(DIAGNOSES)}"]
    corpus += [" ".join(v) for v in DIAGNOSES.values()] * 3
    return word_tokenizer(corpus, "t5")


@lru_cache(maxsize=5)
def t5_scenario(kind: str) -> tuple[Any, Any]:
    """Tiny T5 trained into one of seed 002's states: ``pad`` (unmasked label padding), ``loop`` (no EOS in labels), ``constant``
    (inputs truncated to a shared preamble), ``prefix`` (multitask: plain input → copy, prefixed → diagnosis),
    ``healthy`` (prefixed, masked, long enough)."""
    tok = _t5_tokenizer()
    model = tiny_t5(len(tok))
    data = diagnosis_examples(240, seed=11)
    if kind == "pad":  # unmasked PAD labels (seed 002's fresh run): the decoder learns pad -> pad
        pairs = [(e["input"], e["output"]) for e in data]
        train_seq2seq(model, tok, pairs, steps=20, lr=1e-3, mask_pad=False, max_target_length=12)
    elif kind == "loop":  # targets tokenized without </s>: never learns to stop, "infarction infarction ..."
        pairs = [(e["input"], e["output"]) for e in data]
        train_seq2seq(model, tok, pairs, steps=60, lr=3e-3, eos_in_labels=False)
    elif kind == "constant":
        pre = diagnosis_examples(240, seed=11, preamble="Patient presents to the clinic. ")
        rng = random.Random(2)
        pre = [e for e in pre if e["output"] == "Pneumonia" or rng.random() < 0.4]  # an imbalanced dataset
        cut = [(" ".join(e["input"].split()[:5]), e["output"]) for e in pre]  # max_length too small: only the preamble
        train_seq2seq(model, tok, cut, steps=120, lr=3e-3)
    elif kind in ("prefix", "healthy"):
        pairs = [(f"{PREFIX} {e['input']}", e["output"]) for e in data]
        if kind == "prefix":
            pairs += [(e["input"], e["input"]) for e in data]
        train_seq2seq(model, tok, pairs, steps=300 if kind == "prefix" else 200, lr=5e-3)
    return model, tok


# ------------------------------------------------------------------ attribution: one token decides
FILLERS = [f"w{i}" for i in range(20)]
KEYS = {"KEYA": "yes", "KEYB": "no"}


def key_token_lines(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, answer): seven words, one of them maybe a key at a random place; the key alone sets the answer
    (``none`` without a key, so the model must detect each key rather than the other's absence). The answer
    always comes eighth: no cue token, nothing but the key carries information about it."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        key = rng.choice([*KEYS, None])
        words = rng.sample(FILLERS, 6 if key else 7)
        if key:
            words.insert(rng.randint(0, 6), key)
        out.append((" ".join(words), KEYS[key] if key else "none"))
    return out


@lru_cache(maxsize=1)
def key_token_llama() -> tuple[Any, Any]:
    lines = key_token_lines(3000, seed=8)
    tok = word_tokenizer([f"{p} {a}" for p, a in lines], "causal")
    model = tiny_llama(len(tok), layers=2)
    return train_causal(model, tok, [f"{p} {a}" for p, a in lines], steps=200, lr=5e-3), tok
