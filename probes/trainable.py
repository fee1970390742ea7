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


def trainable(model: Any, base_vocab_size: int | None = None) -> list[Finding]:
    """Trainable-parameter summary; fail when new tokens exist but their rows cannot be trained."""
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
