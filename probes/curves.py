"""Training-curve probes: overfitting, memorization, divergence, stalled and undertrained runs.

Each probe takes a :class:`~ehrdebug.runstore.history.History` (from an ehrdebug run or an HF
``trainer_state.json``) and returns findings with the figures that decided them. Verdicts use medians
over the last few points, so one noisy evaluation or one bad batch never decides alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from ehrdebug.runstore.history import History
from probes.curves_stats import (
    centered_median,
    finite_pairs,
    head_level,
    median,
    non_finite,
    prepared,
    project_decay,
    rank_trend,
    robust_z,
    rounded,
    tail_level,
    value_at,
)

# Fixed factors (relative, unitless); the tunable thresholds live in EhrDebugConfig.thresholds.
OVERFIT_FAIL_FACTOR = 3.0  # a rise of 3x ``overfit_rise`` over >= 3 evaluations is a failure
GAP_MIN_NATS = 0.1  # ... and at least this far apart, so two near-zero losses never count
SPIKE_RATIO = 1.5  # ... that is also at least this many times the recent level
EXPLODE_RATIO = 1.1  # ending above the starting loss (and at least 2x the best): diverged
UNRECOVERED_RATIO = 2.0  # ending at 2x the level before the first spike: it never recovered
PLATEAU_RATIO = 1.5  # ending flat at this multiple of the best training loss


def _cfg(config: EhrDebugConfig | None) -> EhrDebugConfig:
    return config or EhrDebugConfig()


def overfitting(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """Validation loss rising over several evaluations after its best while training loss falls."""
    h = prepared(history)
    thr = _cfg(config).threshold("overfit_rise")
    rule = (
        f"median of the last 3 evaluations at least {thr:.0%} above the (3-point median) best, with a rising trend "
        f"(Kendall tau > 0) over at least 2 evaluations after it, while the training loss kept falling; "
        f"{OVERFIT_FAIL_FACTOR * thr:.0%} over 3+ evaluations is a failure"
    )
    if not h.evals:
        return [Finding("curves.overfitting", Severity.INFO, "No validation loss logged: overfitting cannot be judged",
                        evidence={"eval_keys": [], "train_points": len(h.train)}, recipes=["add-validation-set"],
                        rule="needs an eval_*loss series with at least 3 evaluations")]
    findings: list[Finding] = []
    checked: dict[str, dict[str, object]] = {}
    for key, series in h.evals.items():
        steps, values = finite_pairs(series)
        if len(values) < 3:
            checked[key] = {"evaluations": len(values), "verdict": "too few evaluations"}
            continue
        smooth = centered_median(values, 3)
        i_best = min(range(len(smooth)), key=lambda i: (smooth[i], i))
        best_s = smooth[i_best]
        i_raw = min(range(len(values)), key=lambda i: (values[i], i))
        after = len(values) - 1 - i_best
        level = tail_level(values, 3)
        rise = (level - best_s) / best_s if best_s > 0 else 0.0
        trend = rank_trend(steps[i_best:], values[i_best:])
        train_at_best = value_at(h.train, steps[i_best])
        train_last = tail_level(finite_pairs(h.train)[1]) if len(h.train) else None
        train_falling = train_at_best is None or train_last is None or train_last < train_at_best
        evidence = {
            "eval_key": key,
            "best_step": steps[i_raw],
            "best_eval_loss": rounded(values[i_raw]),
            "smoothed_best_step": steps[i_best],
            "smoothed_best": rounded(best_s),
            "last_step": steps[-1],
            "last_eval_loss": rounded(values[-1]),
            "recent_level": rounded(level),
            "relative_rise": rounded(rise, 3),
            "absolute_rise": rounded(level - best_s, 4),
            "evaluations_after_best": after,
            "steps_after_best": steps[-1] - steps[i_best],
            "rise_trend_tau": rounded(trend, 3),
            "train_loss_at_best": rounded(train_at_best),
            "train_loss_last": rounded(train_last),
        }
        checked[key] = {"relative_rise": rounded(rise, 3), "evaluations_after_best": after}
        if after < 2 or rise < thr or trend <= 0:
            continue
        if not train_falling:
            findings.append(Finding("curves.overfitting", Severity.INFO,
                                    f"{key} rose {rise:.0%} after step {steps[i_best]}, but training loss rose too (not overfitting)",
                                    evidence=evidence, recipes=["lower-learning-rate"], rule=rule, subject=key))
            continue
        severe = rise >= OVERFIT_FAIL_FACTOR * thr and after >= 3
        findings.append(Finding(
            "curves.overfitting", Severity.FAIL if severe else Severity.WARN,
            f"Overfitting: {key} rose {rise:.0%} above its best (step {steps[i_best]}) over {after} evaluations "
            f"while training loss fell {train_at_best or 0:.4g} → {train_last or 0:.4g}",
            evidence=evidence, recipes=["early-stopping"], rule=rule, subject=key))
    if not findings:
        findings.append(Finding("curves.overfitting", Severity.OK, "No sustained rise of validation loss",
                                evidence={"eval_sets": checked, "threshold": thr}, rule=rule))
    return findings


def memorization(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """Training loss near zero, or far below what the validation loss supports."""
    h = prepared(history)
    cfg = _cfg(config)
    near_zero = cfg.threshold("near_zero_loss")
    gap_warn, gap_fail = cfg.threshold("memorization_gap_warn"), cfg.threshold("memorization_gap_fail")
    rule = (
        f"training loss (median of last 3 logs) under {near_zero} with no validation to back it is a warning; "
        f"validation loss >= {gap_warn:g}x training loss and {GAP_MIN_NATS} apart is a warning, "
        f">= {gap_fail:g}x a failure; training and validation both under {cfg.threshold('both_near_zero_loss')} warn"
    )
    _, train = finite_pairs(h.train)
    if len(train) < 3:
        return [Finding("curves.memorization", Severity.INFO, "Too few training-loss points to judge memorization",
                        evidence={"train_points": len(train)}, rule=rule)]
    train_level = tail_level(train)
    evals = {k: tail_level(finite_pairs(s)[1]) for k, s in h.evals.items() if finite_pairs(s)[1]}
    evidence: dict[str, object] = {"train_loss_last": rounded(train_level), "train_loss_min": rounded(min(train)),
                                   "near_zero_threshold": near_zero}
    if not evals:
        evidence["eval_keys"] = []
        if train_level < near_zero:
            return [Finding("curves.memorization", Severity.WARN,
                            f"Training loss {train_level:.4g} is near zero and nothing shows the model generalises",
                            evidence=evidence, recipes=["add-validation-set", "early-stopping"], rule=rule)]
        return [Finding("curves.memorization", Severity.OK, f"Training loss {train_level:.4g} is not near zero",
                        evidence=evidence, rule=rule)]
    key, eval_level = min(evals.items(), key=lambda kv: kv[1])
    ratio = eval_level / train_level if train_level > 0 else math.inf
    gap = eval_level - train_level
    evidence.update({"eval_key": key, "eval_loss_last": rounded(eval_level), "eval_to_train_ratio": rounded(ratio, 3),
                     "gap": rounded(gap, 4)})
    if gap >= GAP_MIN_NATS and ratio >= gap_warn:
        severe = ratio >= gap_fail
        return [Finding("curves.memorization", Severity.FAIL if severe else Severity.WARN,
                        f"Memorising: training loss {train_level:.4g} is {ratio:.1f}x below {key} {eval_level:.4g}",
                        evidence=evidence, recipes=["early-stopping"], rule=rule)]
    both = cfg.threshold("both_near_zero_loss")
    if train_level < both and eval_level < both:
        return [_both_near_zero(h, train_level, key, eval_level, both, evidence, rule)]
    title = ("Training loss near zero, but validation agrees" if train_level < near_zero
             else f"Training and validation losses agree ({ratio:.2f}x)")
    return [Finding("curves.memorization", Severity.OK, title, evidence=evidence, rule=rule)]


def _both_near_zero(h: History, train_level: float, key: str, eval_level: float, both: float,
                    evidence: dict[str, object], rule: str) -> Finding:
    """Both losses near zero: a held-out set predicted almost perfectly is more often a leak than skill."""
    from probes.metrics import accuracy_metrics

    accuracy = accuracy_metrics(h)
    checks = ["validation examples (prompt and target) or patients also in train (ehrdebug check data)",
              "the target contained in its input (labels copied from input_ids, the answer in the prompt)",
              "a loss dominated by template tokens (structural tokens, prompt or padding not masked with -100)"]
    evidence = {**evidence, "both_near_zero_threshold": both, "what_to_check": checks,
                "per_token_probability": rounded(math.exp(-eval_level), 4)}
    title = (f"Training {train_level:.4g} and {key} {eval_level:.4g} are both near zero: suspicious — check for a leak "
             "between splits, a target contained in its input, or a loss dominated by template tokens")
    if accuracy:
        worst_key, worst = min(accuracy.items(), key=lambda kv: kv[1])
        evidence.update({"accuracy_metrics": {k: rounded(v, 4) for k, v in accuracy.items()},
                         "see_also": "metrics.loss_vs_accuracy"})
        title += f"; compare with {worst_key} {worst:.0%} (metrics.loss_vs_accuracy)"
    return Finding("curves.memorization", Severity.WARN, title, evidence=evidence,
                   recipes=["deduplicate-splits", "split-by-patient", "mask-label-padding"], rule=rule)


def divergence(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """NaN/inf losses, sudden spikes (robust z-score on log loss) and explosion above the starting loss."""
    h = prepared(history)
    spike_z = _cfg(config).threshold("spike_z")
    rule = (
        f"any NaN/inf loss fails; a spike is a log-loss jump over the previous 3 points with robust z >= {spike_z:g} "
        f"and >= {SPIKE_RATIO}x (warns); ending >= {EXPLODE_RATIO}x the starting loss and >= 2x the best, or "
        f">= {UNRECOVERED_RATIO}x the level before the first spike, fails"
    )
    findings: list[Finding] = []
    bad = [(s, v, h.train.name) for s, v in non_finite(h.train)]
    bad += [(s, v, key) for key, series in h.evals.items() for s, v in non_finite(series)]
    if bad:
        first = min(bad)
        findings.append(Finding(
            "curves.divergence", Severity.FAIL, f"Loss became {first[1]} at step {first[0]} ({len(bad)} non-finite values)",
            evidence={"first_bad_step": first[0], "non_finite_count": len(bad),
                      "last_finite_train_loss": rounded(value_at(h.train, first[0]))},
            examples=[{"step": s, "series": k, "value": str(v)} for s, v, k in sorted(bad)[:5]],
            recipes=["lower-learning-rate"], rule=rule))
    steps, values = finite_pairs(h.train)
    if len(values) < 5:
        return findings or [Finding("curves.divergence", Severity.OK, "All losses finite (too few points for spikes)",
                                    evidence={"train_points": len(values)}, rule=rule)]
    positive = [max(v, 1e-12) for v in values]
    jumps = [math.log(positive[i] / median(positive[max(0, i - 3):i])) for i in range(1, len(positive))]
    z = robust_z(jumps)
    spikes = [
        {"step": steps[i + 1], "loss": rounded(values[i + 1]), "ratio": rounded(math.exp(j), 3), "z": rounded(zz, 3)}
        for i, (j, zz) in enumerate(zip(jumps, z, strict=True))
        if zz >= spike_z and math.exp(j) >= SPIKE_RATIO
    ]
    start, best, end = head_level(values), min(values), tail_level(values)
    evidence = {"initial_loss": rounded(start), "best_loss": rounded(best), "last_loss": rounded(end),
                "max_jump_ratio": rounded(math.exp(max(jumps)), 3), "max_jump_z": rounded(max(z), 3),
                "spikes": len(spikes)}
    first = next((i + 1 for i, (j, zz) in enumerate(zip(jumps, z, strict=True))
                  if zz >= spike_z and math.exp(j) >= SPIKE_RATIO), None)
    before = median(values[max(0, first - 3):first]) if first else None
    if end >= EXPLODE_RATIO * start and end >= 2 * best:
        findings.append(Finding("curves.divergence", Severity.FAIL,
                                f"Loss exploded: ended at {end:.4g}, above its start {start:.4g} (best {best:.4g})",
                                evidence=evidence, examples=spikes[:5], recipes=["lower-learning-rate"], rule=rule))
    elif first is not None and before is not None and end >= UNRECOVERED_RATIO * before:
        evidence.update({"jump_step": steps[first], "loss_before_jump": rounded(before)})
        findings.append(Finding("curves.divergence", Severity.FAIL,
                                f"Loss jumped at step {steps[first]} ({before:.4g} → {values[first]:.4g}) and never recovered "
                                f"(last {end:.4g})", evidence=evidence, examples=spikes[:5],
                                recipes=["lower-learning-rate"], rule=rule))
    elif spikes:
        findings.append(Finding("curves.divergence", Severity.WARN,
                                f"{len(spikes)} loss spike(s), largest {max(s['ratio'] for s in spikes)}x the recent level",
                                evidence=evidence, examples=spikes[:5], recipes=["lower-learning-rate"], rule=rule))
    if not findings:
        findings.append(Finding("curves.divergence", Severity.OK, "Losses finite, no spikes, no explosion",
                                evidence=evidence, rule=rule))
    return findings


def stalled(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """No decrease from the initial loss, or a flat plateau far above the best loss seen."""
    h = prepared(history)
    cfg = _cfg(config)
    stall_fail, stall_warn = cfg.threshold("stall_drop_fail"), cfg.threshold("stall_drop_warn")
    rule = (
        f"relative drop from the first 3 logs to the best loss under {stall_fail:.0%} fails, under {stall_warn:.0%} "
        f"warns; a flat last quarter at >= {PLATEAU_RATIO}x the best training loss warns"
    )
    steps, values = finite_pairs(h.train)
    if len(values) < 5:
        return [Finding("curves.stalled", Severity.INFO, "Too few training-loss points to judge progress",
                        evidence={"train_points": len(values)}, rule=rule)]
    start, best, end = head_level(values), min(values), tail_level(values)
    drop = (start - end) / start if start > 0 else 0.0
    best_drop = (start - best) / start if start > 0 else 0.0
    lr = h.metrics.get("learning_rate")
    evidence: dict[str, object] = {"initial_loss": rounded(start), "last_loss": rounded(end), "best_loss": rounded(best),
                                   "relative_drop": rounded(drop, 3), "best_relative_drop": rounded(best_drop, 3),
                                   "train_points": len(values)}
    if lr is not None and lr.finite:
        evidence["max_learning_rate"] = rounded(max(lr.finite))
    if best_drop < stall_warn and drop > -(EXPLODE_RATIO - 1):
        sev = Severity.FAIL if best_drop < stall_fail else Severity.WARN
        return [Finding("curves.stalled", sev,
                        f"Loss barely moved: {start:.4g} → {end:.4g} ({drop:.1%}) over {steps[-1] - steps[0]} steps",
                        evidence=evidence, recipes=["raise-learning-rate"], rule=rule)]
    quarter = values[-max(4, len(values) // 4):]
    flat = (max(quarter) - min(quarter)) / median(quarter) if median(quarter) > 0 else 0.0
    evidence["last_quarter_spread"] = rounded(flat, 3)
    if end >= PLATEAU_RATIO * best and end - best >= 0.05 * start and end < start and flat < 0.25:
        return [Finding("curves.stalled", Severity.WARN,
                        f"Plateau at {end:.4g}, {end / best:.1f}x above the best {best:.4g} reached earlier",
                        evidence=evidence, recipes=["lower-learning-rate"], rule=rule)]
    return [Finding("curves.stalled", Severity.OK, f"Loss fell {drop:.0%} from its start", evidence=evidence, rule=rule)]


def undertrained(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """Training stopped while validation loss was still clearly falling (seed 004).

    Judged on the recent slope: a curve whose last evaluations still improve a little but flatten (after an
    early steep drop) is reported with what a fit of its end says is left, and warned only when the fit
    expects a substantial further fall soon.
    """
    h = prepared(history)
    cfg = _cfg(config)
    still_falling, gain_warn = cfg.threshold("still_falling"), cfg.threshold("gain_soon_warn")
    rule = (f"the last evaluation is the best, validation loss fell >= {still_falling:.0%} over the last (up to 3) "
            f"evaluations, and a fit of the last 5 (exponential or power law, the closer) expects >= {gain_warn:.0%} "
            "more over as many evaluations again; with fewer than 3 evaluations the fall alone decides")
    if not h.evals:
        return [Finding("curves.undertrained", Severity.INFO,
                        "No validation loss logged: cannot tell whether training stopped too early",
                        evidence={"eval_keys": []}, recipes=["add-validation-set"], rule=rule)]
    findings: list[Finding] = []
    flattening: list[Finding] = []
    checked: dict[str, object] = {}
    for key, series in h.evals.items():
        steps, values = finite_pairs(series)
        if len(values) < 2:
            checked[key] = {"evaluations": len(values)}
            continue
        k = min(3, len(values))
        fall = (values[-k] - values[-1]) / values[-k] if values[-k] > 0 else 0.0
        is_best = values[-1] <= min(values) * 1.001
        epochs = [e for v, e in zip(series.values, series.epochs, strict=False) if math.isfinite(v)]
        proj = project_decay(steps, values, epochs=epochs)
        checked[key] = {"recent_fall": rounded(fall, 3), "last_is_best": is_best}
        evidence: dict[str, object] = {"eval_key": key, "last_step": steps[-1], "last_eval_loss": rounded(values[-1]),
                                       "recent_fall": rounded(fall, 3), "evaluations": len(values),
                                       "last_evaluation_fall": rounded((values[-2] - values[-1]) / values[-2], 3)
                                       if values[-2] > 0 else None,
                                       "per_evaluation_fall": rounded(fall / (k - 1), 3)}
        if proj is not None:
            evidence.update(proj.as_evidence())
            checked[key].update({"fall_over_next_evaluations": rounded(proj.gain_soon, 3)})  # type: ignore[union-attr]
        if not (is_best and fall >= still_falling):
            continue
        if proj is None or proj.gain_soon >= gain_warn:
            outlook = proj.describe() if proj else "too few evaluations to project how far it would go"
            findings.append(Finding(
                "curves.undertrained", Severity.WARN,
                f"Stopped while {key} was still falling: {values[-k]:.4g} → {values[-1]:.4g} ({fall:.1%}) over the "
                f"last {k} evaluations; {outlook}",
                evidence=evidence, recipes=["train-longer"], rule=rule, subject=key))
        else:
            flattening.append(Finding(
                "curves.undertrained", Severity.OK,
                f"{key} still improving ({evidence['last_evaluation_fall']:.1%} at the last evaluation) but flattening: "
                f"{proj.describe()}", evidence=evidence, rule=rule, subject=key))
    if not findings:
        findings = flattening or [Finding("curves.undertrained", Severity.OK, "Validation loss had levelled off or turned",
                                          evidence={"eval_sets": checked}, rule=rule)]
    return findings


CURVE_PROBES: dict[str, Callable[[History, EhrDebugConfig | None], list[Finding]]] = {
    "curves.overfitting": overfitting,
    "curves.memorization": memorization,
    "curves.divergence": divergence,
    "curves.stalled": stalled,
    "curves.undertrained": undertrained,
}


def run_curve_probes(history: History, config: EhrDebugConfig | None = None) -> list[Finding]:
    """Every curve probe on one history (a run with no training loss at all gets one info finding)."""
    if not len(history.train) and not history.evals:
        return [Finding("curves.history", Severity.INFO, "No loss was logged: curve probes skipped",
                        evidence={"metrics": sorted(history.metrics)})]
    out: list[Finding] = []
    for probe in CURVE_PROBES.values():
        out.extend(probe(history, config))
    return out
