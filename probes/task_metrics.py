"""metrics.classifier and metrics.next_visit: is the model better than knowing nothing?

A binary classifier that has not learned scores AUROC 0.5 (its bootstrap interval holds 0.5) and AUPRC
equal to the prevalence; with few positives AUROC alone flatters, so AUPRC and its random baseline are
always reported. A next-visit model that has collapsed onto code popularity ranks the same frequent
codes first for every patient: its recall@k is no better than predicting the k most frequent training
codes at every k (the one-sided bootstrap bound of the gain reaches 0), usually with one top-k list for
everybody. Metrics are scikit-learn's; intervals are percentile bootstraps over patients.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity
from probes.codeprobe_common import rounded

CLASSIFIER = "metrics.classifier"
NEXT_VISIT = "metrics.next_visit"
AUROC_NEAR_CHANCE = 0.6  # an interval holding 0.5 only counts as "not learning" below this point estimate
AUPRC_LIFT = 1.1  # AUPRC below this multiple of the prevalence is no better than the prior
MINORITY_SHARE = 0.2
FLAT_STD = 1e-3  # predicted probabilities varying less than this are one answer for everybody
SAME_TOPK_JACCARD = 0.9
NOT_LEARNING = ["increase-learning-rate", "train-longer"]
COLLAPSE = ["init-head-to-code-prior", *NOT_LEARNING, "weight-rare-codes"]
GAIN_ALPHA = 0.05  # one-sided: is the model better than popularity? (the 5th percentile of the gain above 0)


def _bootstrap(stat, n: int, rounds: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        value = stat(idx)
        if value is not None:
            out.append(value)
    return sorted(out)


def _interval(values: list[float], alpha: float) -> tuple[float, float] | None:
    if len(values) < 20:
        return None
    lo = values[int(alpha / 2 * (len(values) - 1))]
    hi = values[int((1 - alpha / 2) * (len(values) - 1))]
    return lo, hi


def probe_classifier(
    y_true: Sequence[Any],
    y_prob: Sequence[float],
    *,
    n_boot: int = 400,
    seed: int = 0,
    alpha: float = 0.05,
    minority_share: float = MINORITY_SHARE,
    split: str = "test",
    subject: str = "",
) -> list[Finding]:
    """AUROC with a bootstrap interval, AUPRC against the prevalence, the spread of the predictions."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from ehrdebug.metrics import binary_metrics, bootstrap_ci

    y = np.asarray([int(bool(v)) for v in y_true])
    p = np.asarray(y_prob, dtype=float)
    if y.size != p.size:
        from ehrdebug.errors import UserError

        raise UserError(f"{y.size} labels but {p.size} predicted probabilities")
    positives = int(y.sum())
    if not y.size or positives in (0, y.size):
        return [Finding(CLASSIFIER, Severity.INFO, f"{split}: {y.size} predictions with {positives} positives: AUROC "
                        "needs both classes", evidence={"n": int(y.size), "positives": positives}, subject=subject)]
    metrics = binary_metrics(y, p)
    prevalence, auroc, auprc = positives / y.size, float(metrics["auroc"]), float(metrics["auprc"])

    def fast_auroc(ys, ps) -> float | None:
        return float(roc_auc_score(ys, ps)) if 0 < ys.sum() < ys.size else None

    boot = bootstrap_ci(fast_auroc, y, p, n=n_boot, seed=seed, level=1 - alpha)
    ci = (boot["low"], boot["high"]) if boot["low"] is not None and boot["n_valid"] >= 20 else None
    evidence: dict[str, Any] = {
        "split": split, "n": int(y.size), "positives": positives, "prevalence": rounded(prevalence),
        "auroc": rounded(auroc), "auroc_ci": [rounded(ci[0]), rounded(ci[1])] if ci else None,
        "auprc": rounded(auprc), "auprc_of_random_classifier": rounded(prevalence),
        "f1_at_0_5": rounded(metrics["f1"]), "brier": rounded(metrics["brier"]) if metrics["brier"] is not None else None,
        "prob_std": rounded(float(p.std()), 6), "prob_min": rounded(float(p.min())), "prob_max": rounded(float(p.max())),
        "distinct_probabilities": int(np.unique(np.round(p, 6)).size), "bootstrap_rounds": n_boot,
    }
    examples = [{"label": int(a), "probability": rounded(float(b))} for a, b in list(zip(y, p, strict=True))[:6]]
    findings: list[Finding] = []
    flat = float(p.std()) < FLAT_STD
    chance = ci is not None and ci[0] <= 0.5 <= ci[1] and auroc < AUROC_NEAR_CHANCE
    prior = auprc < AUPRC_LIFT * prevalence
    if flat or chance or prior:
        why = []
        if flat:
            why.append(f"it gives every patient nearly the same probability (std {p.std():.1e}, "
                       f"{p.min():.3f}..{p.max():.3f})")
        if chance:
            why.append(f"AUROC {auroc:.3f} with a 95% interval {ci[0]:.2f}–{ci[1]:.2f} that holds 0.5")
        if prior:
            why.append(f"AUPRC {auprc:.3f} is no better than the prevalence {prevalence:.3f}")
        findings.append(Finding(
            CLASSIFIER, Severity.FAIL if (flat or (chance and prior)) else Severity.WARN,
            f"{split}: the classifier has not learned: " + "; ".join(why),
            evidence=evidence, examples=examples,
            rule=f"not learning = probabilities flat (std < {FLAT_STD:g}), or an AUROC under {AUROC_NEAR_CHANCE} whose "
                 f"bootstrap {1 - alpha:.0%} interval holds 0.5, or AUPRC < {AUPRC_LIFT}× the prevalence",
            recipes=list(NOT_LEARNING), subject=subject,
        ))
    if prevalence < minority_share or prevalence > 1 - minority_share:
        findings.append(Finding(
            CLASSIFIER, Severity.INFO,
            f"{split}: positives are {prevalence:.1%} ({positives} of {y.size}): AUPRC {auprc:.3f} against a random "
            f"{prevalence:.3f} says more than AUROC {auroc:.3f}",
            evidence=evidence, rule=f"prevalence under {minority_share:.0%}: report AUPRC (random = prevalence) beside AUROC",
            recipes=["report-auprc"], subject=subject,
        ))
    if not any(f.severity >= Severity.WARN for f in findings):
        findings.insert(0, Finding(
            CLASSIFIER, Severity.OK,
            f"{split}: the classifier learned: AUROC {auroc:.3f}"
            + (f" (95% {ci[0]:.2f}–{ci[1]:.2f})" if ci else "") + f", AUPRC {auprc:.3f} vs a prior of {prevalence:.3f}",
            evidence=evidence, subject=subject,
        ))
    return findings


def probe_meds_predictions(path: str, *, n_boot: int = 400, seed: int = 0, subject: str = "") -> list[Finding]:
    """``probe_classifier`` on a MEDS-evaluation predictions file (``boolean_value``,
    ``predicted_boolean_probability``), as runs write under ``artifacts/predictions/``."""
    import pyarrow.parquet as pq

    from ehrdebug.errors import UserError

    try:
        table = pq.read_table(path, columns=["boolean_value", "predicted_boolean_probability"]).to_pydict()
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot read MEDS predictions {path}: {str(exc).splitlines()[0]}") from exc
    rows = [(y, p) for y, p in zip(table["boolean_value"], table["predicted_boolean_probability"], strict=True)
            if y is not None and p is not None]
    split = path.rsplit("/", 1)[-1].split(".", 1)[0] or "test"
    return probe_classifier([y for y, _ in rows], [p for _, p in rows], n_boot=n_boot, seed=seed, split=split,
                            subject=subject or path)


def ranked_from_scores(scores: Any, columns: Sequence[str], k: int, exclude: Sequence[str] = ()) -> list[list[str]]:
    """Each row's ``k`` highest-scoring codes (``columns`` names the score columns; ``exclude`` specials)."""
    import numpy as np

    matrix = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=float)
    keep = np.array([c not in set(exclude) for c in columns])
    names = np.asarray(list(columns))[keep]
    order = np.argsort(-matrix[:, keep], axis=1)[:, :k]
    return [names[row].tolist() for row in order]


def recall_at_k(truth: Sequence[Sequence[str]], ranked: Sequence[Sequence[str]], k: int) -> list[float]:
    """Per patient with a non-empty next visit: share of its codes among the first ``k`` predictions."""
    out = []
    for gold, pred in zip(truth, ranked, strict=True):
        gold_set = set(gold)
        if gold_set:
            out.append(len(gold_set & set(pred[:k])) / len(gold_set))
    return out


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def probe_next_visit(
    truth: Sequence[Sequence[str]],
    ranked: Sequence[Sequence[str]],
    train_counts: Mapping[str, int] | Sequence[Sequence[str]],
    *,
    ks: Sequence[int] = (10, 20),
    n_boot: int = 400,
    seed: int = 0,
    split: str = "test",
    subject: str = "",
) -> list[Finding]:
    """recall@k of the model's ranked codes against the k most frequent training codes, and how alike
    the predictions of different patients are.

    ``truth``: each patient's next-visit codes; ``ranked``: the model's codes best first (see
    ``ranked_from_scores``); ``train_counts``: code counts of the training targets, or the targets themselves.
    """
    if len(truth) != len(ranked):
        from ehrdebug.errors import UserError

        raise UserError(f"{len(truth)} next visits but {len(ranked)} predictions")
    counts = Counter(train_counts) if isinstance(train_counts, Mapping) else Counter(
        c for codes in train_counts for c in set(codes))
    if not truth or not counts:
        return [Finding(NEXT_VISIT, Severity.INFO, "no next visits or no training code counts to compare with",
                        evidence={"patients": len(truth), "training_codes": len(counts)}, subject=subject)]
    popular = [code for code, _ in counts.most_common(max(ks))]
    findings: list[Finding] = []
    per_k: dict[str, Any] = {}
    rng = random.Random(seed)
    k0 = min(ks)
    sets = [set(r[:k0]) for r in ranked]
    pairs = [(rng.randrange(len(sets)), rng.randrange(len(sets))) for _ in range(min(2000, len(sets) * 4))]
    pairs = [(a, b) for a, b in pairs if a != b]
    alike = sum(_jaccard(sets[a], sets[b]) for a, b in pairs) / len(pairs) if pairs else 1.0
    to_popular = sum(_jaccard(s, set(popular[:k0])) for s in sets) / len(sets)
    distinct = len({frozenset(s) for s in sets})
    collapsed_at, better_at = [], []
    for k in ks:
        model = recall_at_k(truth, ranked, k)
        base = recall_at_k(truth, [popular] * len(truth), k)
        diff = [m - b for m, b in zip(model, base, strict=True)]
        boot = _bootstrap(lambda idx, d=diff: sum(d[i] for i in idx) / len(idx), len(diff), n_boot, seed) if diff else []
        ci = _interval(boot, 2 * GAIN_ALPHA)
        mean_m, mean_b = (sum(model) / len(model), sum(base) / len(base)) if model else (0.0, 0.0)
        per_k[f"recall_at_{k}"] = rounded(mean_m)
        per_k[f"popular_recall_at_{k}"] = rounded(mean_b)
        per_k[f"gain_at_{k}"] = rounded(mean_m - mean_b)
        per_k[f"gain_lower_bound_at_{k}"] = rounded(ci[0]) if ci else None
        if model and (ci[0] <= 0 if ci else mean_m <= mean_b):
            collapsed_at.append(k)
        elif model:
            better_at.append(k)
    evidence = {"split": split, "patients": len(truth), "patients_with_next_visit": sum(1 for t in truth if t),
                **per_k, "mean_pairwise_jaccard_top_k": rounded(alike), "mean_jaccard_to_popular_top_k": rounded(to_popular),
                "distinct_top_k_sets": distinct, "k_for_similarity": k0, "popular_codes": popular[:k0]}
    examples = [{"predicted": list(r[:5]), "truth": list(t)[:5]} for r, t in list(zip(ranked, truth, strict=True))[:4]]
    if collapsed_at and not better_at:
        same = alike >= SAME_TOPK_JACCARD
        findings.append(Finding(
            NEXT_VISIT, Severity.FAIL if same else Severity.WARN,
            f"{split}: popularity collapse: recall@{collapsed_at[0]} {per_k[f'recall_at_{collapsed_at[0]}']:.3f} is no "
            f"better than the {collapsed_at[0]} most frequent training codes ({per_k[f'popular_recall_at_{collapsed_at[0]}']:.3f})"
            + (f"; the top-{k0} lists of two patients share {alike:.0%} of their codes" if same else ""),
            evidence=evidence, examples=examples,
            rule=f"at every k the one-sided {1 - GAIN_ALPHA:.0%} bootstrap lower bound of (model − most-frequent-codes) "
                 f"recall@k is 0 or below; top-k lists with a mean pairwise Jaccard ≥ {SAME_TOPK_JACCARD} are one list for everybody",
            recipes=list(COLLAPSE), subject=subject,
        ))
    else:
        findings.append(Finding(
            NEXT_VISIT, Severity.OK,
            f"{split}: next-visit predictions beat code popularity: "
            + ", ".join(f"recall@{k} {per_k[f'recall_at_{k}']:.3f} vs {per_k[f'popular_recall_at_{k}']:.3f}" for k in ks)
            + (f" (not significantly at k={', '.join(map(str, collapsed_at))})" if collapsed_at else ""),
            evidence=evidence, subject=subject,
        ))
    return findings
