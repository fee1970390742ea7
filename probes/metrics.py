"""Metric probes: a low loss that the task metric does not back up (seed 003: loss 0.053, 0% strict accuracy).

Per-token cross-entropy of L nats means the model puts about exp(-L) on each reference token under
teacher forcing; at loss 0.05 that is 95%. An exact-match accuracy near zero next to such a loss says
the answers are right token by token but wrong as strings: format, extra text, post-processing.
"""

from __future__ import annotations

import math
import re

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.runstore.history import History
from probes.curves_stats import finite_pairs, rounded, tail_level

_ACC = re.compile(r"(^|_)(accuracy|acc|exact_match|exact|em|strict_accuracy|strict)($|_)")


def accuracy_metrics(history: History) -> dict[str, float]:
    """The last logged value of every accuracy-like metric, as a fraction (percentages are divided by 100)."""
    out: dict[str, float] = {}
    for key, series in history.normalized().metrics.items():
        if not _ACC.search(key.lower()):
            continue
        _, values = finite_pairs(series)
        if values:
            out[key] = _fraction(values[-1])
    return out


def _fraction(value: float) -> float:
    return value / 100.0 if value > 1.0 else value


def loss_vs_accuracy(
    history: History, config: EhrDebugConfig | None = None, accuracy: dict[str, float] | None = None
) -> list[Finding]:
    """Low loss with low accuracy points at the output format, not at training.

    ``accuracy`` adds metrics measured elsewhere (e.g. strict accuracy of generated answers).
    """
    from ehrdebug.config import EhrDebugConfig

    cfg = config or EhrDebugConfig()
    low_loss, acc_warn, acc_fail = (cfg.threshold(k) for k in ("low_loss", "accuracy_warn", "accuracy_fail"))
    rule = (f"loss <= {low_loss} (>= {math.exp(-low_loss):.0%} per reference token) with an accuracy metric "
            f"<= {acc_warn:.0%} warns, <= {acc_fail:.0%} fails")
    h = history.normalized()
    metrics = accuracy_metrics(h)
    metrics.update({k: _fraction(v) for k, v in (accuracy or {}).items() if math.isfinite(v)})
    loss_key, loss = _reference_loss(h)
    evidence: dict[str, object] = {"loss_key": loss_key, "loss": rounded(loss),
                                   "per_token_probability": rounded(math.exp(-loss), 3) if loss is not None and loss >= 0 else None,
                                   "accuracy_metrics": {k: rounded(v, 4) for k, v in metrics.items()}}
    if loss is None:
        return [Finding("metrics.loss_vs_accuracy", Severity.OK, "No loss logged to compare with accuracy",
                        evidence=evidence, rule=rule)]
    if not metrics:
        return [Finding("metrics.loss_vs_accuracy", Severity.OK,
                        f"No accuracy-type metric logged (loss {loss:.4g}); nothing to compare", evidence=evidence, rule=rule)]
    worst_key, worst = min(metrics.items(), key=lambda kv: kv[1])
    evidence.update({"worst_metric": worst_key, "worst_accuracy": rounded(worst, 4)})
    if 0 <= loss <= low_loss and worst <= acc_warn:
        sev = Severity.FAIL if worst <= acc_fail else Severity.WARN
        return [Finding(
            "metrics.loss_vs_accuracy", sev,
            f"Low loss {loss:.4g} ({math.exp(-loss):.0%} per token) but {worst_key} is {worst:.0%}: "
            "the answers are close token by token but not in the format the metric checks",
            evidence=evidence, recipes=["constrain-to-labels", "strict-output-format"], rule=rule)]
    return [Finding("metrics.loss_vs_accuracy", Severity.OK,
                    f"Loss {loss:.4g} and {worst_key} {worst:.0%} agree", evidence=evidence, rule=rule)]


def _reference_loss(h: History) -> tuple[str | None, float | None]:
    """The validation loss when there is one (it is what accuracy is measured beside), else the training loss."""
    for key in sorted(h.evals, key=lambda k: (k != "eval_loss", k)):
        _, values = finite_pairs(h.evals[key])
        if values:
            return key, tail_level(values, 1)
    _, values = finite_pairs(h.train)
    return ("loss", tail_level(values)) if values else (None, None)


def run_metric_probes(history: History, config: EhrDebugConfig | None = None,
                      accuracy: dict[str, float] | None = None) -> list[Finding]:
    return loss_vs_accuracy(history, config, accuracy)
