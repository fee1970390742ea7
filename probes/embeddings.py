"""model.new_embeddings: how rows added beyond the base vocabulary were initialised, moved and wired.

Seed 000: ids 50265-50267 kept random embeddings throughout training, so ``<v>`` never beat the
pretrained subwords. Seed 002: a "missing keys embed_tokens / lm_head" warning that may be harmless
(tied weights) or a real loss (an untied output layer left at random init). Evidence only: norms of new
rows against the base rows' norm distribution, cosine to the base mean (mean init) and to the mean of
the token's own text pieces (description init), per-row movement against a reference state, the
lm_head/embedding shapes, and which missing keys share storage with a loaded tensor.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "model.new_embeddings"
MOVED_EPS = 1e-7  # relative change under which a row "never moved"


def _norm_stats(norms: Any) -> dict[str, float]:
    import torch

    q = torch.quantile(norms, torch.tensor([0.01, 0.5, 0.99]))
    return {"mean": round(float(norms.mean()), 4), "std": round(float(norms.std()), 4), "p01": round(float(q[0]), 4),
            "median": round(float(q[1]), 4), "p99": round(float(q[2]), 4)}


def _description_ids(tokenizer: Any, text: str, base: int) -> list[int]:
    """Ids of the base pieces the token's text splits into when it is not registered (description init)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    ids: list[int] = []
    if backend is not None:
        words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(text)] if backend.pre_tokenizer else [text]
        for w in words:
            ids.extend(t.id for t in backend.model.tokenize(w))
    unk = getattr(tokenizer, "unk_token_id", None)
    return [i for i in ids if i < base and i != unk]


def classify_rows(weight: Any, base: int, tokenizer: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per new row: norm, z-score and percentile vs base norms, cosine to the base mean and to its description."""
    import torch
    import torch.nn.functional as F

    w = weight.detach().float().cpu()
    base_rows, new_rows = w[:base], w[base:]
    norms = base_rows.norm(dim=1)
    mu, sd = float(norms.mean()), float(norms.std()) or 1e-12
    mean_vec = base_rows.mean(0)
    base_cos = F.cosine_similarity(base_rows, mean_vec[None], dim=1)
    rows = []
    for i, row in enumerate(new_rows):
        n = float(row.norm())
        cos_mean = float(F.cosine_similarity(row[None], mean_vec[None])[0]) if float(mean_vec.norm()) > 0 else 0.0
        entry: dict[str, Any] = {
            "id": base + i,
            "piece": str(tokenizer.convert_ids_to_tokens(base + i)) if tokenizer is not None else str(base + i),
            "norm": round(n, 4),
            "z": round((n - mu) / sd, 2),
            "percentile": round(float((norms < n).float().mean()) * 100, 1),
            "cos_to_base_mean": round(cos_mean, 3),
        }
        if tokenizer is not None:
            desc = _description_ids(tokenizer, entry["piece"], base)
            if desc:
                entry["cos_to_description"] = round(float(F.cosine_similarity(row[None], base_rows[desc].mean(0)[None])[0]), 3)
        entry["init"] = _init_kind(entry, float(torch.quantile(base_cos, 0.99)))
        rows.append(entry)
    stats = {"base_rows": base, "new_rows": len(rows), "base_norms": _norm_stats(norms),
             "base_mean_norm": round(float(mean_vec.norm()), 4), "base_cos_to_mean_p99": round(float(torch.quantile(base_cos, 0.99)), 3)}
    return rows, stats


def _init_kind(entry: dict[str, Any], base_cos_p99: float) -> str:
    if entry.get("cos_to_description", 0.0) >= 0.95:
        return "description"
    if entry["cos_to_base_mean"] >= max(0.95, base_cos_p99):
        return "mean"
    if abs(entry["z"]) >= 3 or entry["percentile"] <= 1 or entry["percentile"] >= 99:
        return "random"  # off the base norm distribution and not aligned with anything learned
    return "like-base"


def _param_name(model: Any, tensor: Any) -> str | None:
    for name, p in model.named_parameters(remove_duplicate=False):
        if p is tensor:
            return name
    return None


def _reference_tensor(reference_state: dict[str, Any], name: str | None, shape: Any) -> Any:
    if name is None:
        return None
    candidates = [name, name.replace("base_model.model.", ""), name.replace(".modules_to_save.default", ""),
                  name.replace(".original_module", "")]
    for key in candidates + [k for k in reference_state if k.endswith(name.split(".", 1)[-1])]:
        ref = reference_state.get(key)
        if ref is not None and tuple(ref.shape)[1:] == tuple(shape)[1:]:
            return ref
    return None


def _movement(weight: Any, ref: Any, base: int) -> dict[str, Any]:
    w = weight.detach().float().cpu()
    r = ref.detach().float().cpu()
    n = min(w.shape[0], r.shape[0])
    delta = (w[:n] - r[:n]).norm(dim=1) / (r[:n].norm(dim=1) + 1e-12)
    moved = delta > MOVED_EPS
    return {
        "base_rows_moved": round(float(moved[:base].float().mean()), 4) if base else 0.0,
        "new_rows_moved": int(moved[base:].sum()),
        "new_rows_unmoved_ids": [base + i for i, m in enumerate(moved[base:].tolist()) if not m],
        "new_rows_mean_rel_change": round(float(delta[base:].mean()), 4) if n > base else 0.0,
    }


def new_embeddings(
    model: Any, base_vocab_size: int | None = None, *, reference_state: dict[str, Any] | None = None, tokenizer: Any = None
) -> list[Finding]:
    """Initialisation, movement and lm_head wiring of rows added beyond ``base_vocab_size``."""
    emb = model.get_input_embeddings().weight
    rows_total = int(emb.shape[0])
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out_w = getattr(out, "weight", None)
    tied = out_w is not None and out_w.data_ptr() == emb.data_ptr()
    evidence: dict[str, Any] = {"embedding_rows": rows_total, "dim": int(emb.shape[1]),
                                "config_vocab_size": getattr(model.config, "vocab_size", None), "tied_lm_head": tied}
    if out_w is not None:
        evidence["lm_head_rows"] = int(out_w.shape[0])
    findings: list[Finding] = []
    findings += _lm_head_shape(evidence, rows_total, out_w)
    base = base_vocab_size if base_vocab_size is not None and 0 < base_vocab_size < rows_total else None
    if base is None:
        findings.append(Finding(PROBE, Severity.OK, f"no rows beyond the base vocabulary ({rows_total} rows)", evidence,
                                rule="checks rows beyond base_vocab_size"))
        return _dedupe_ok(findings)
    ref = _reference_tensor(reference_state, _param_name(model, emb), emb.shape) if reference_state else None
    rows, stats = classify_rows(ref if ref is not None and ref.shape[0] == rows_total else emb, base, tokenizer)
    evidence.update(stats)
    evidence["init_judged_on"] = "reference state" if ref is not None and ref.shape[0] == rows_total else "current weights"
    kinds = sorted({r["init"] for r in rows})
    evidence["init_kinds"] = kinds
    pieces = [r["piece"] for r in rows]
    random_rows = [r for r in rows if r["init"] == "random"]
    if random_rows:
        findings.append(Finding(
            PROBE, Severity.WARN,
            f"{len(random_rows)}/{len(rows)} new embedding rows look randomly initialised "
            f"(norm z {min(r['z'] for r in random_rows)}..{max(r['z'] for r in random_rows)}, cos to base mean "
            f"{max(r['cos_to_base_mean'] for r in random_rows):.2f} max)",
            evidence, random_rows[:8], ["init-new-embeddings-mean", "init-new-embeddings-description", "warmup-new-embeddings"],
            rule="random when a new row's norm is outside the base rows' 1st-99th percentile (or |z|>=3) and it is "
                 "not aligned (cos<0.95) with the base mean or its own text pieces",
        ))
    if ref is not None:
        findings += _moved_findings(model, emb, ref, base, evidence, pieces)
    if out_w is not None and not tied and out_w.shape[0] == rows_total:
        head_ref = _reference_tensor(reference_state, _param_name(model, out_w), out_w.shape) if reference_state else None
        use_ref = head_ref is not None and head_ref.shape[0] == rows_total
        head_rows, _ = classify_rows(head_ref if use_ref else out_w, base, tokenizer)
        evidence["lm_head_new_rows"] = [{k: r[k] for k in ("piece", "norm", "z", "init")} for r in head_rows[:8]]
        if any(r["init"] == "random" for r in head_rows) and not random_rows:
            findings.append(Finding(
                PROBE, Severity.WARN, "untied lm_head: the new output rows look random although the input rows do not",
                evidence, head_rows[:8], ["tie-or-resize-lm-head", "init-new-embeddings-mean"],
                rule="the lm_head rows of new tokens are judged like the input rows",
            ))
    if not any(f.severity >= Severity.WARN for f in findings):
        findings.append(Finding(PROBE, Severity.OK if kinds != ["like-base"] else Severity.INFO,
                                f"{len(rows)} new rows: init {', '.join(kinds)}; lm_head in step", evidence, rows[:8],
                                rule="mean/description/like-base init and rows that move are healthy"))
    return _dedupe_ok(findings)


def _lm_head_shape(evidence: dict[str, Any], rows_total: int, out_w: Any) -> list[Finding]:
    if out_w is None or int(out_w.shape[0]) == rows_total:
        return []
    head = int(out_w.shape[0])
    what = "can never be generated" if head < rows_total else "are produced by lm_head but have no input embedding"
    return [Finding(
        PROBE, Severity.FAIL,
        f"lm_head has {head} rows but the input embeddings have {rows_total}: {abs(rows_total - head)} tokens {what}",
        evidence, [{"input_rows": rows_total, "lm_head_rows": head}], ["tie-or-resize-lm-head"],
        rule="input embeddings and lm_head must have the same number of rows after resizing",
    )]


def _moved_findings(model: Any, emb: Any, ref: Any, base: int, evidence: dict[str, Any], pieces: list[str]) -> list[Finding]:
    move = _movement(emb, ref, base)
    evidence["movement"] = move
    unmoved = move["new_rows_unmoved_ids"]
    if not unmoved:
        return []
    names = [pieces[i - base] for i in unmoved if i - base < len(pieces)]
    if move["base_rows_moved"] == 0:
        return [Finding(
            PROBE, Severity.FAIL,
            f"the embeddings never moved (frozen): {len(unmoved)} new tokens keep their initial rows ({', '.join(names[:6])})",
            evidence, names[:10], ["lora-train-embeddings"],
            rule="fail when new rows exist and no embedding row changed since the reference state",
        )]
    return [Finding(
        PROBE, Severity.WARN,
        f"{len(unmoved)} new token rows never moved while {move['base_rows_moved']:.0%} of base rows did "
        f"(never seen in training?): {', '.join(names[:6])}",
        evidence, names[:10], [],
        rule="warn when a new row is unchanged since the reference state although other rows were trained",
    )]


def _dedupe_ok(findings: list[Finding]) -> list[Finding]:
    return findings or [Finding(PROBE, Severity.OK, "embeddings checked")]


# ---------------------------------------------------------------- missing / unexpected keys at load
def load_keys(model: Any, state_dict: dict[str, Any] | None = None, *, loading_info: dict[str, Any] | None = None) -> list[Finding]:
    """Tell harmless tied-weight 'missing keys' from real losses.

    ``model`` is the model after loading; give the ``state_dict`` it was loaded from, or the
    ``loading_info`` of ``from_pretrained(..., output_loading_info=True)``. A missing key is harmless when
    its tensor shares storage with (or equals) a key that was loaded.
    """
    import torch

    own = model.state_dict(keep_vars=True)
    if state_dict is not None:
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        mismatched = [(k, tuple(state_dict[k].shape), tuple(own[k].shape)) for k in set(own) & set(state_dict)
                      if tuple(state_dict[k].shape) != tuple(own[k].shape)]
    else:
        info = loading_info or {}
        missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
        mismatched = [tuple(m) for m in info.get("mismatched_keys", [])]
    loaded = set(own) - set(missing)
    by_ptr: dict[int, list[str]] = {}
    for k, t in own.items():
        by_ptr.setdefault(t.data_ptr(), []).append(k)
    harmless, lost = [], []
    for k in missing:
        partners = [p for p in by_ptr.get(own[k].data_ptr(), []) if p != k and p in loaded]
        if not partners and state_dict is not None:
            partners = [p for p in loaded if p in state_dict and tuple(state_dict[p].shape) == tuple(own[k].shape)
                        and torch.equal(state_dict[p].detach().cpu(), own[k].detach().cpu())]
        if partners:
            harmless.append({"key": k, "tied_to": partners[0]})
        else:
            lost.append({"key": k, "shape": list(own[k].shape), "norm": round(float(own[k].detach().float().norm()), 4)})
    evidence = {"missing": len(missing), "unexpected": len(unexpected), "mismatched": len(mismatched),
                "harmless_tied": harmless, "lost": lost, "unexpected_keys": unexpected[:10],
                "mismatched_keys": [list(m) for m in mismatched[:10]]}
    findings = []
    if lost or mismatched:
        embed_like = any(("lm_head" in x["key"] or "embed" in x["key"] or "shared" in x["key"]) for x in lost) or mismatched
        findings.append(Finding(
            PROBE, Severity.FAIL,
            f"{len(lost)} missing keys are real losses (left at their initial values)"
            + (f", {len(mismatched)} shape mismatches" if mismatched else "") + f": {', '.join(x['key'] for x in lost[:4])}",
            evidence, lost[:10] + [list(m) for m in mismatched[:5]], ["tie-or-resize-lm-head"] if embed_like else [],
            rule="a missing key is lost when it shares storage with no loaded tensor and equals none",
        ))
    elif harmless or unexpected:
        findings.append(Finding(
            PROBE, Severity.INFO,
            f"{len(harmless)} missing keys are tied weights (harmless): "
            + ", ".join(f"{h['key']} = {h['tied_to']}" for h in harmless[:3]) + (f"; {len(unexpected)} unexpected keys" if unexpected else ""),
            evidence, harmless[:10] + unexpected[:5], [],
            rule="a missing key that shares storage with a loaded key is restored by weight tying",
        ))
    else:
        findings.append(Finding(PROBE, Severity.OK, "every key loaded", evidence, rule="no missing or unexpected keys"))
    return findings


def load_and_check(model: Any, state_dict: dict[str, Any]) -> list[Finding]:
    """Load ``state_dict`` into ``model`` (non-strict, in place) and tell harmless missing keys from losses."""
    model.load_state_dict(state_dict, strict=False)
    return load_keys(model, state_dict)
