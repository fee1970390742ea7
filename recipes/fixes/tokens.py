"""Vocabulary fixes: register the structural tokens as single tokens, add the frequent codes as tokens.

Seed 000: ``<demo>`` was missing from the special tokens and fragmented into ``Ġ<``/``dem``/``o``/``>``;
the codes ``V3001`` -> ``V``/``300``/``1``. Added rows are initialised to the pretrained mean (never
left random, which is the next bug of the same seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ehrdebug.grammar import STRUCTURAL_TOKENS
from recipes.fixes import datasource, surgery
from recipes.fixes.base import Change, Fix, Target, get_key, set_key

DEFAULT_TOP_N = 200


def _data_texts(target: Target, limit: int = 5000) -> list[str]:
    base = target.config_path.parent if target.config_path else target.path
    path = datasource.train_file(target.config, target.info, base)
    return list(datasource.iter_texts(path, limit)) if path else []


def structural_tokens(target: Target) -> list[str]:
    """The dataset's structural tokens: markers recurring in the data, else the project config, else seed 000's."""
    found = datasource.structural_markers(_data_texts(target))
    if not found:
        from ehrdebug.config import load_config

        try:
            found = list(load_config(str(target.path.parent)).structural_tokens)
        except Exception:  # a broken project config must not stop a fix; the grammar default follows
            found = []
    return found or list(STRUCTURAL_TOKENS)


# -- register-structural-tokens ------------------------------------------------------------------

def _register_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    current = list(get_key(cfg, "special_tokens") or [])
    wanted = current + [t for t in structural_tokens(target) if t not in current]
    set_key(cfg, "special_tokens", wanted, changes, "each structural token becomes one id")
    set_key(cfg, "register_special_tokens", True, changes)
    if get_key(cfg, "new_token_init", "random") == "random":
        set_key(cfg, "new_token_init", "mean", changes, "new rows start at the pretrained mean, not noise")
    return changes


def add_single_tokens(src: Path, dst: Path | None, tokens: list[str], what: str) -> list[Change]:
    """Add ``tokens`` that do not encode to one id, resize, initialise their rows to the pretrained mean."""
    tokenizer = surgery.load_tokenizer(src)
    missing = [t for t in tokens if len(tokenizer.encode(t, add_special_tokens=False)) != 1]
    if not missing:
        return []
    before = {t: tokenizer.tokenize(t) for t in missing}
    changes = [Change(f"tokenizer[{t!r}]", before[t], [t], f"{what} added as one token") for t in missing]
    changes.append(Change("embeddings.rows", len(tokenizer), len(tokenizer) + len(missing), "new rows = pretrained mean"))
    if dst is None:
        return changes
    model = surgery.load_model(src)
    pretrained_rows = model.get_input_embeddings().weight.shape[0]
    if what == "structural token":
        tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
    else:
        tokenizer.add_tokens(missing)
    surgery.resize(model, len(tokenizer))
    ids = surgery.added_token_ids(tokenizer, missing)
    surgery.init_rows_mean(model, ids, min(pretrained_rows, min(ids)))
    surgery.save(model, tokenizer, src, dst)
    return changes


def _register_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
    return add_single_tokens(src, dst, structural_tokens(target), "structural token")


REGISTER = Fix(
    id="register-structural-tokens",
    answers=("tokenizer.structural", "model.special_token_probability", "generation.structure"),
    summary="register the dataset's structural tokens (<demo>, <v>, <\\v>, <END>) as single tokens and resize the embeddings",
    on_config=_register_config,
    on_checkpoint=_register_checkpoint,
)


# -- add-code-tokens -------------------------------------------------------------------------------

def top_codes(target: Target, n: int) -> list[str]:
    """The ``n`` codes training would add: the core counter over the training targets, skipping the structural tokens."""
    from ehrdebug.codes import top_codes as count_top

    base = target.config_path.parent if target.config_path else target.path
    path = datasource.train_file(target.config, target.info, base)
    return count_top(datasource.iter_targets(path), n, structural_tokens(target)) if path else []


def _codes_config(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    current = get_key(cfg, "add_code_tokens")
    n = int(current) if isinstance(current, int) and not isinstance(current, bool) and current > 0 else DEFAULT_TOP_N
    set_key(cfg, "add_code_tokens", n, changes, f"the top {n} most frequent codes become whole tokens")
    if get_key(cfg, "new_token_init", "random") == "random":
        set_key(cfg, "new_token_init", "description", changes, "a code token starts from the mean of its pieces")
    return changes


def _codes_checkpoint(src: Path, dst: Path | None, target: Target) -> list[Change]:
    codes = top_codes(target, DEFAULT_TOP_N)
    if not codes:
        return []
    return add_single_tokens(src, dst, codes, "code")


ADD_CODES = Fix(
    id="add-code-tokens",
    answers=("tokenizer.codes",),
    summary="add the top-N most frequent codes as whole tokens",
    on_config=_codes_config,
    on_checkpoint=_codes_checkpoint,
)

FIXES = (REGISTER, ADD_CODES)
