"""Loading a base and adding tokens to it: the part of seed 000 that decides whether training can work.

``register_special_tokens`` keeps ``<demo>`` one token instead of ``['Ġ<', 'dem', 'o', '>']``;
``new_token_init`` decides where the new rows start: ``random`` (N(0, 0.02), the seed's bug),
``mean`` (the mean of the pretrained rows, the seed's fix) or ``description`` (the mean of the
embeddings of a short description, e.g. ``<v>`` → "visit start", a code → its own subword pieces).
"""

from __future__ import annotations

from typing import Any

DESCRIPTIONS = {
    "<demo>": "demographics",
    "<v>": "visit start",
    "<\\v>": "visit end",
    "<END>": "end of record",
}


DROPOUT_KEYS = ("dropout_rate", "dropout", "hidden_dropout_prob")  # T5, BART, BERT-style configs


def load_base(base: str, recipe: str | None = None, dropout: float | None = None) -> tuple[Any, Any]:
    """Tokenizer and model from a local ``save_pretrained`` dir or a hub id, always in fp32.

    ``dropout`` replaces the base's dropout rate under whichever name its config uses (BART ``dropout``,
    T5 ``dropout_rate``); None keeps it. ``recipe`` is accepted for older callers and not used.
    """
    import os

    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    from ehrdebug.errors import UserError

    looks_local = base.startswith((".", "/", "~")) or os.sep in base and not _hub_like(base)
    if looks_local and not os.path.isdir(os.path.expanduser(base)):
        raise UserError(f"base model directory not found: {base} (a local dir or a hub id such as t5-small)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(os.path.expanduser(base))
        extra: dict[str, Any] = {}
        if dropout is not None:
            base_config = AutoConfig.from_pretrained(os.path.expanduser(base))
            key = next((k for k in DROPOUT_KEYS if hasattr(base_config, k)), "dropout")
            extra[key] = float(dropout)
        model = AutoModelForSeq2SeqLM.from_pretrained(os.path.expanduser(base), dtype=torch.float32, **extra)
    except (OSError, ValueError) as exc:  # no weights / no tokenizer files in the directory
        raise UserError(f"cannot load base {base!r}: {str(exc).strip().splitlines()[0]}") from exc
    return tokenizer, model


def _hub_like(name: str) -> bool:
    """``facebook/bart-base`` is a hub id; ``sample_data/bases/bart`` is a path."""
    import os

    return name.count("/") == 1 and not os.path.exists(name) and not name.startswith(("sample_data", "runs"))


def top_codes(targets: list[str], structural: set[str], n: int) -> list[str]:
    """The ``n`` most frequent codes in the training targets: the core counter ``ehrdebug.codes.top_codes``,
    the same one the add-code-tokens fix uses, so a fixed checkpoint gets the codes training would add."""
    from ehrdebug.codes import top_codes as count_top

    return count_top(targets, n, structural)


def _space_marked(tokenizer: Any) -> bool:
    """Byte-level BPE folds the preceding space into a word (``Ġ250``); such tokenizers get codes
    registered with their leading space so ``" 250.00"`` is one token and still decodes with its space."""
    ids = tokenizer(" a", add_special_tokens=False)["input_ids"]
    return len(ids) == 1 and tokenizer.convert_ids_to_tokens(ids)[0].startswith("Ġ")


def add_tokens(model: Any, tokenizer: Any, special: list[str], codes: list[str], init: str, seed: int = 0) -> dict[str, Any]:
    """Register ``special`` (as special tokens) and ``codes`` (as whole words), resize, initialise rows.

    Returns what was done, for run.json and the embedding probes (``base_vocab_size``, ids, init).
    """
    import torch
    from tokenizers import AddedToken

    base_vocab = len(tokenizer)
    code_tokens = [f" {c}" for c in codes] if codes and _space_marked(tokenizer) else list(codes)
    described = {t: tokenizer(DESCRIPTIONS.get(t, t), add_special_tokens=False)["input_ids"] for t in list(special) + code_tokens}
    n_special = tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in special], special_tokens=True) if special else 0
    # leading-space codes cannot use single_word (the char before the space is a word char); added
    # tokens match leftmost-longest, so " 414.01" still wins over " 41" when both are registered
    spaced = code_tokens != list(codes)
    n_codes = tokenizer.add_tokens([AddedToken(c, single_word=not spaced, normalized=False) for c in code_tokens]) if codes else 0
    added = [t for t in list(special) + code_tokens if tokenizer.convert_tokens_to_ids(t) >= base_vocab]
    info: dict[str, Any] = {"base_vocab_size": base_vocab, "added": len(added), "special_added": n_special,
                            "codes_added": n_codes, "init": init}  # fmt: skip
    if not added:
        return info
    old_rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    emb = model.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        trained = emb[: min(base_vocab, old_rows)]
        mean = trained.mean(dim=0)
        for token in added:
            row = tokenizer.convert_tokens_to_ids(token)
            if init == "random":
                emb[row] = torch.randn(emb.shape[1], generator=gen) * 0.02
            elif init == "mean":
                emb[row] = mean
            else:  # description: mean of the pretrained pieces of a short description of the token
                ids = [i for i in described[token] if i < min(base_vocab, old_rows)]
                emb[row] = trained[ids].mean(dim=0) if ids else mean
        head = model.get_output_embeddings()
        if head is not None and head.weight.data_ptr() != emb.data_ptr():
            for token in added:  # an untied head: give the new rows the same start
                row = tokenizer.convert_tokens_to_ids(token)
                head.weight[row] = emb[row] if init != "random" else torch.randn(emb.shape[1], generator=gen) * 0.02
    info["added_ids"] = {t: tokenizer.convert_tokens_to_ids(t) for t in added[:50]}
    return info


def fragments(tokenizer: Any, text: str) -> list[str]:
    """How ``text`` is tokenized (what seed 000's logs showed for ``<demo>``)."""
    return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])
