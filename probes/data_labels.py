"""data.labels: class balance per split, missing labels, and which metric fits the balance.

With few positives AUROC looks good while the model finds few of them: a random classifier's AUROC
is 0.5 whatever the balance, its AUPRC is the positive share (0.10 for seed 004's mortality label).
So when the minority class is rare the probe says to report AUPRC beside AUROC, with the baseline.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ehrdebug.findings import Finding, Severity

PROBE = "data.labels"
LABEL_FIELD_GUESSES = ("label", "mortality", "y", "outcome", "class", "readmission")
# a guessed column with more distinct values than this is free text, not a class label
MAX_GUESSED_CLASSES = 100
# multi-class: largest/smallest class count from which per-class metrics are recommended
IMBALANCE_RATIO = 10.0
# minority share under which the recommendation becomes a warning (below the configured threshold it is info)
RARE_WARN_SHARE = 0.02


def guess_label_field(record: Mapping[str, Any]) -> str | None:
    """A scalar label column with a common name (``labels`` is left alone: it is usually token ids)."""
    for name in LABEL_FIELD_GUESSES:
        if name in record and not isinstance(record[name], (list, tuple, dict)):
            return name
    return None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "none", "null", "na")


def _norm(value: Any) -> Any:
    """Make 1, 1.0, "1" and True one class; keep other strings as they are."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in ("true", "false"):
            return int(low == "true")
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() else number
    return value


def probe_labels(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    label_field: str | None = None,
    minority_share: float = 0.2,
    subject: str = "",
) -> list[Finding]:
    """Class balance and missing labels for each split; names the metric to report."""
    first = next((rows[0] for rows in splits.values() if rows), None)
    if first is None:
        return [Finding(PROBE, Severity.INFO, "no records to check labels on", subject=subject)]
    field = label_field or guess_label_field(first)
    if not field:
        return [Finding(
            PROBE, Severity.OK, "no label column (pass --label-field to check class balance)",
            evidence={"columns": list(first)[:20], "looked_for": list(LABEL_FIELD_GUESSES)}, subject=subject,
        )]
    if not any(field in rows[0] for rows in splits.values() if rows):
        from ehrdebug.errors import UserError

        raise UserError(f"label field {field!r} not in the data (columns: {', '.join(map(str, first))})")
    per_split: dict[str, dict[str, Any]] = {}
    findings: list[Finding] = []
    totals: Counter[Any] = Counter()
    for name, rows in splits.items():
        values = [row.get(field) for row in rows]
        missing = sum(1 for v in values if _missing(v))
        if any(isinstance(v, (list, tuple)) for v in values):
            findings.extend(_multilabel(name, field, values, minority_share, subject))
            continue
        counts = Counter(_norm(v) for v in values if not _missing(v))
        totals.update(counts)
        per_split[name] = {"rows": len(values), "missing": missing,
                           "classes": {str(k): c for k, c in sorted(counts.items(), key=lambda kv: -kv[1])}}
        if missing:
            share = missing / len(values)
            findings.append(Finding(
                PROBE, Severity.FAIL if missing == len(values) else Severity.WARN,
                f"{missing} of {len(values)} {name} examples have no {field!r} label ({share:.1%})",
                evidence={"split": name, "missing": missing, "rows": len(values)},
                examples=[{"row": i, field: values[i]} for i, v in enumerate(values) if _missing(v)][:5],
                rule="every example needs a label; missing ones are silently dropped or read as a class",
                subject=subject,
            ))
        if name != "train" and len(counts) == 1 and len(totals) > 1:
            only = next(iter(counts))
            findings.append(Finding(
                PROBE, Severity.WARN, f"{name} split has only class {only!r}: AUROC/AUPRC cannot be computed on it",
                evidence={"split": name, "classes": per_split[name]["classes"]},
                rule="an evaluation split needs every class", recipes=["split-by-patient"], subject=subject,
            ))
    if not totals:
        return findings or [Finding(PROBE, Severity.OK, "no scalar labels found", subject=subject)]
    if not label_field and len(totals) > MAX_GUESSED_CLASSES:
        return [Finding(PROBE, Severity.OK, f"{field!r} has {len(totals)} distinct values: free text, not a class label "
                        "(pass --label-field to check class balance)", evidence={"distinct_values": len(totals)},
                        subject=subject)]
    n = sum(totals.values())
    minority, min_count = min(totals.items(), key=lambda kv: kv[1])
    share = min_count / n
    evidence: dict[str, Any] = {
        "label_field": field, "classes": len(totals), "minority_class": str(minority),
        "minority_share": round(share, 4), "per_split": per_split,
    }
    if len(totals) == 1:
        findings.append(Finding(PROBE, Severity.FAIL, f"{field!r} has a single class ({minority!r}) in every split",
                                evidence=evidence, rule="a classifier needs at least two classes", subject=subject))
    elif len(totals) > 2:
        majority = max(totals.values())
        evidence["imbalance_ratio"] = round(majority / min_count, 2)
        evidence["classes_under_5_examples"] = sum(1 for c in totals.values() if c < 5)
        if majority / min_count >= IMBALANCE_RATIO:
            findings.append(Finding(
                PROBE, Severity.INFO,
                f"{len(totals)} classes in {field!r}, largest {majority} vs smallest {min_count} ({minority!r}): "
                "report per-class (macro) F1 or AUPRC beside accuracy",
                evidence=evidence, rule=f"largest/smallest class ≥ {IMBALANCE_RATIO:g} → per-class metrics",
                recipes=["report-auprc"], subject=subject,
            ))
        else:
            findings.append(Finding(PROBE, Severity.OK, f"{field!r}: {len(totals)} classes, largest/smallest "
                                    f"{majority / min_count:.1f}", evidence=evidence, subject=subject))
    elif share < minority_share:
        evidence["auprc_of_random_classifier"] = round(share, 4)
        evidence["auroc_of_random_classifier"] = 0.5
        sev = Severity.WARN if share < RARE_WARN_SHARE else Severity.INFO
        findings.append(Finding(
            PROBE, sev,
            f"class {minority!r} is {share:.1%} of {field!r} ({min_count} of {n}): report AUPRC beside AUROC "
            f"(a random classifier scores AUPRC {share:.2f}, AUROC 0.5)",
            evidence=evidence,
            rule=f"minority share under {minority_share:.0%} (thresholds.minority_share) → AUPRC and F1 beside AUROC; "
                 f"under {RARE_WARN_SHARE:.0%} it is a warning",
            recipes=["report-auprc"], subject=subject,
        ))
    else:
        findings.append(Finding(PROBE, Severity.OK, f"{field!r}: {len(totals)} classes, minority {share:.1%}",
                                evidence=evidence, subject=subject))
    return findings


def _multilabel(name: str, field: str, values: list[Any], minority_share: float, subject: str) -> list[Finding]:
    """List-valued labels: prevalence of each label across the split."""
    rows = [v for v in values if isinstance(v, (list, tuple))]
    counts: Counter[Any] = Counter(x for row in rows for x in set(map(str, row)))
    if not rows or not counts:
        return [Finding(PROBE, Severity.WARN, f"{name}: {field!r} lists are empty", subject=subject)]
    prevalence = {k: c / len(rows) for k, c in counts.items()}
    rare = sum(1 for p in prevalence.values() if p < minority_share)
    evidence = {"split": name, "label_field": field, "rows": len(rows), "distinct_labels": len(counts),
                "labels_under_minority_share": rare, "most_common": counts.most_common(5)}
    if rare:
        return [Finding(
            PROBE, Severity.INFO,
            f"{name}: {rare} of {len(counts)} labels occur in under {minority_share:.0%} of examples: "
            "report per-label or micro AUPRC beside AUROC",
            evidence=evidence, rule="rare labels → AUPRC (its random baseline is the label's prevalence)",
            recipes=["report-auprc"], subject=subject,
        )]
    return [Finding(PROBE, Severity.OK, f"{name}: {len(counts)} labels, none rare", evidence=evidence, subject=subject)]
