"""model.trainable: what will actually be trained (LoRA targets/rank, embeddings, lm_head).

Seed 003 trained 16.7M LoRA parameters (0.25%); with new tokens added, frozen embeddings mean the new
rows keep their initial values for the whole run. This probe reads the parameters' ``requires_grad``
and the peft config; it never trains anything.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "model.trainable"


def _module_prefix(model: Any, tensor: Any) -> str | None:
    for name, p in model.named_parameters(remove_duplicate=False):
        if p is tensor:
            return name.rsplit(".", 1)[0]
    return None


def _under_trainable(model: Any, module: Any) -> bool:
    """True when the module (or a peft wrapper of it: modules_to_save, trainable tokens) has a trainable tensor."""
    if module is None:
        return False
    if any(p.requires_grad for p in module.parameters()):
        return True
    weight = getattr(module, "weight", None)
    prefix = _module_prefix(model, weight) if weight is not None else None
    if prefix is None:
        return False
    stem = prefix.replace(".original_module", "").replace(".base_layer", "").replace(".modules_to_save.default", "")
    return any(p.requires_grad and name.startswith(stem) for name, p in model.named_parameters())


def _peft_summary(model: Any) -> dict[str, Any] | None:
    configs = getattr(model, "peft_config", None)
    if not configs:
        return None
    out: dict[str, Any] = {}
    for name, cfg in configs.items():
        targets = getattr(cfg, "target_modules", None)
        out[name] = {
            "type": str(getattr(cfg, "peft_type", "")).split(".")[-1],
            "r": getattr(cfg, "r", None),
            "lora_alpha": getattr(cfg, "lora_alpha", None),
            "target_modules": sorted(targets) if isinstance(targets, (set, list, tuple)) else targets,
            "modules_to_save": list(getattr(cfg, "modules_to_save", None) or []),
            "trainable_token_indices": getattr(cfg, "trainable_token_indices", None),
        }
    out["lora_layers"] = sum(1 for n, _ in model.named_modules() if n.endswith("lora_A"))
    return out


def added_token_ids(tokenizer: Any, base_vocab_size: int | None = None) -> list[int]:
    """Ids the tokenizer adds beyond its base vocabulary (its added tokens; the base's own specials excluded)."""
    base = base_vocab_size if base_vocab_size is not None else getattr(tokenizer, "vocab_size", None)
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    return sorted(int(i) for i in decoder if base is not None and int(i) >= int(base))


def trained_rows(model: Any) -> tuple[set[int] | None, list[str]]:
    """(embedding rows the model trains: None = all of them, and how), from the adapter's own config.

    ``modules_to_save`` holding the embedding trains (and saves) every row; ``trainable_token_indices``
    only the listed ones. A saved full embedding (peft saves it whenever the vocabulary was resized) is
    no evidence of training: its rows may be exactly the ones the base started from.
    """
    emb = model.get_input_embeddings()
    configs = getattr(model, "peft_config", None)
    if not configs:
        return (None, ["requires_grad"]) if _under_trainable(model, emb) else (set(), [])
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is emb or getattr(m, "base_layer", None) is emb}
    names |= {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if any(c is emb for c in m.children())}
    rows: set[int] = set()
    how: list[str] = []
    for cfg in configs.values():
        saved = set(getattr(cfg, "modules_to_save", None) or [])
        if saved & names or saved & {"embed_tokens", "wte", "word_embeddings", "shared"}:
            return None, ["modules_to_save"]
        indices = getattr(cfg, "trainable_token_indices", None)
        if isinstance(indices, dict):
            for ids in indices.values():
                rows |= {int(i) for i in ids}
        elif indices:
            rows |= {int(i) for i in indices}
        if indices:
            how.append("trainable_token_indices")
    return rows, how


def unmoved_rows(model: Any, ids: list[int], n_base: int) -> list[int]:
    """Of ``ids``, the rows (as the model embeds them, adapter deltas included) still equal to the mean of the
    first ``n_base`` rows: the mean initialisation, never moved by training."""
    import torch

    emb = model.get_input_embeddings()
    rows = int(getattr(getattr(emb, "weight", None), "shape", [0])[0] or 0) or max(ids) + 1
    if not ids or n_base <= 0 or max(ids) >= rows:
        return []
    plain = type(emb) is torch.nn.Embedding  # else a peft wrapper: its forward adds the trained deltas
    def rows_of(index: Any) -> Any:
        return emb.weight[index] if plain else emb(index)
    try:
        with torch.no_grad():
            total = None
            for start in range(0, n_base, 4096):
                chunk = rows_of(torch.arange(start, min(start + 4096, n_base))).float().sum(dim=0)
                total = chunk if total is None else total + chunk
            mean = total / n_base
            current = rows_of(torch.tensor(ids)).float()
    except (TypeError, RuntimeError, IndexError):  # an embedding module that takes more than token ids
        return []
    same = torch.isclose(current, mean.expand_as(current), atol=1e-6, rtol=1e-5).all(dim=1)
    return [i for i, s in zip(ids, same.tolist(), strict=True) if s]


def new_token_findings(model: Any, tokenizer: Any, base_vocab_size: int | None, evidence: dict[str, Any]) -> list[Finding] | None:
    """The added tokens against the rows the adapter (or the model) trains, and the rows that never moved."""
    ids = added_token_ids(tokenizer, base_vocab_size)
    if not ids:
        return None
    n_base = base_vocab_size if base_vocab_size is not None else int(getattr(tokenizer, "vocab_size", 0) or 0)
    trained, how = trained_rows(model)
    frozen = ids if trained is not None and not trained else [i for i in ids if trained is not None and i not in trained]
    unmoved = unmoved_rows(model, ids, n_base)
    pieces = {i: tokenizer.convert_ids_to_tokens(i) for i in ids}
    evidence.update({"added_tokens": len(ids), "added_ids": ids[:50], "trained_by": how or None,
                     "frozen_ids": frozen[:50], "unmoved_ids": unmoved[:50], "new_tokens": len(ids)})
    examples = [{"id": i, "piece": pieces[i], "trained": i not in frozen, "moved": i not in unmoved} for i in ids[:20]]
    rule = ("fail when tokens the tokenizer adds beyond its base vocabulary get no trained row (not in the adapter's "
            "modules_to_save / trainable_token_indices, or a frozen embedding); warn when trained rows still equal "
            "the mean initialisation")
    if frozen:
        shown = ", ".join(f"{i} {pieces[i]!r}" for i in frozen[:8])
        still = f"; {len(unmoved)} still at the mean initialisation" if unmoved else ""
        return [Finding(PROBE, Severity.FAIL,
                        f"{len(frozen)} added tokens have frozen embedding rows ({shown}){still}: the adapter never "
                        "trains them (no modules_to_save or trainable_token_indices for them)",
                        evidence, examples, ["lora-train-embeddings"], rule=rule)]
    if unmoved:
        shown = ", ".join(f"{i} {pieces[i]!r}" for i in unmoved[:8])
        title = (f"{len(unmoved)} added tokens are trainable but their rows never moved ({shown})" if how != ["requires_grad"] else
                 f"{len(unmoved)} added tokens still have their initial rows, the mean of the base rows ({shown}): "
                 "training never updated them (frozen embeddings, e.g. LoRA without modules_to_save)")
        return [Finding(PROBE, Severity.WARN, title,
                        evidence, examples, ["lora-train-embeddings", "warmup-new-embeddings"], rule=rule)]
    return [Finding(PROBE, Severity.OK, f"{len(ids)} added tokens, all trained ({', '.join(how) or 'full model'}) and moved",
                    evidence, examples, rule=rule)]


def trainable(model: Any, base_vocab_size: int | None = None, tokenizer: Any = None) -> list[Finding]:
    """Trainable-parameter summary; fail when new tokens exist but their rows cannot be trained.

    With ``tokenizer`` the new tokens are its added tokens (not the rows beyond ``base_vocab_size``: a model
    resized before saving has those rows whether or not they trained), judged against the adapter's config
    and the rows' values (``new_token_findings``).
    """
    total = trainable_n = 0
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable_n += p.numel() if p.requires_grad else 0
    emb = model.get_input_embeddings()
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    rows = int(emb.weight.shape[0])
    new_rows = rows - base_vocab_size if base_vocab_size is not None and base_vocab_size < rows else 0
    tied = out is not None and getattr(out, "weight", None) is not None and out.weight.data_ptr() == emb.weight.data_ptr()
    evidence: dict[str, Any] = {
        "total_params": total,
        "trainable_params": trainable_n,
        "trainable_share": round(trainable_n / total, 6) if total else 0.0,
        "embeddings_trainable": _under_trainable(model, emb),
        "lm_head_trainable": _under_trainable(model, out) if out is not None else None,
        "lm_head_tied": tied,
        "new_tokens": new_rows,
    }
    peft = _peft_summary(model)
    if peft:
        evidence["peft"] = peft
    summary = f"{trainable_n:,} of {total:,} parameters trainable ({evidence['trainable_share']:.2%})"
    tokens = new_token_findings(model, tokenizer, base_vocab_size, evidence) if tokenizer is not None and trainable_n else None
    if tokens is not None and tokens[0].severity > Severity.OK:
        return tokens
    if trainable_n == 0:
        return [Finding(PROBE, Severity.FAIL, f"nothing is trainable: {summary}", evidence, [], ["raise-learning-rate"],
                        rule="fail when no parameter requires grad")]
    frozen = [what for what, ok in (("input embeddings", evidence["embeddings_trainable"]),
                                    ("lm_head", evidence["lm_head_trainable"] if not tied else True)) if ok is False]
    if new_rows and frozen:
        return [Finding(
            PROBE, Severity.FAIL,
            f"{new_rows} new tokens were added but the {' and '.join(frozen)} are frozen: their rows keep their initial values",
            evidence, [{"frozen": frozen, "new_tokens": new_rows, "peft": bool(peft)}], ["lora-train-embeddings"],
            rule="fail when rows beyond base_vocab_size exist and the embeddings/lm_head get no gradient "
                 "(LoRA without modules_to_save or trainable_token_indices)",
        )]
    return [Finding(PROBE, Severity.OK, summary, evidence, [peft] if peft else [],
                    rule="fail when nothing is trainable or new tokens sit in frozen embeddings")]
