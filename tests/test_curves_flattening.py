"""curves.undertrained judged on the recent slope, and both losses near zero (issue 10), on real HF logs.

The fixtures come from real tiny HF Trainer runs (tests/fixtures/curves/generate.py): ``flattening`` drops
steeply then improves only ~2.5% at its last evaluation; ``still_falling`` is still ~5% lower at each of
its ten evaluations; ``both_near_zero`` validates on its own training sequences (a leak).
"""

from __future__ import annotations

import math
from pathlib import Path

from ehrdebug.config import EhrDebugConfig, from_mapping
from ehrdebug.findings import Severity
from ehrdebug.runstore import open_run
from ehrdebug.runstore.history import History
from probes import curves
from probes.curves_stats import project_decay
from probes.metrics import loss_vs_accuracy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "curves"


def history(name: str) -> History:
    return open_run(FIXTURES / name).history()


def _eval(name: str) -> tuple[list[int], list[float]]:
    s = history(name).normalized().evals["eval_loss"]
    return s.steps, s.values


def test_fixture_shapes_are_what_the_tests_claim() -> None:
    steps, flat = _eval("flattening")
    assert (flat[0] - flat[2]) / flat[0] > 0.3  # the early steep drop
    assert 0.02 <= (flat[-2] - flat[-1]) / flat[-2] <= 0.03  # the last evaluation improved 2-3%
    assert (flat[-3] - flat[-1]) / flat[-3] >= 0.02  # the old 3-evaluation rule warned on it
    _, falling = _eval("still_falling")
    assert len(falling) >= 8 and all((a - b) / a > 0.04 for a, b in zip(falling[-4:], falling[-3:], strict=False))


def test_steep_then_flattening_is_not_undertrained_and_says_how_far_it_would_go() -> None:
    [f] = curves.undertrained(history("flattening"))
    assert f.severity == Severity.OK and not f.recipes
    assert "flattening" in f.title and "more evaluations" in f.title
    ev = f.evidence
    assert 0.02 <= ev["last_evaluation_fall"] <= 0.03
    assert 0 < ev["fall_over_next_5_evaluations"] < 0.1
    assert 0 < ev["estimated_remaining_share"] < 0.15 and ev["projected_floor"] < ev["last_eval_loss"]
    assert ev["evaluations_to_90pct_of_it"] > 1 and ev["steps_to_90pct_of_it"] > 0 and ev["epochs_to_90pct_of_it"] > 0


def test_clearly_still_falling_warns_train_longer_with_the_projection() -> None:
    for name in ("still_falling", "undertrained"):
        [f] = curves.undertrained(history(name))
        assert f.severity == Severity.WARN and f.recipes == ["train-longer"], name
        assert f.evidence["fall_over_next_5_evaluations"] >= 0.1
        assert f.evidence["estimated_remaining_share"] > 0.2 and "more evaluations" in f.title


def test_gain_soon_threshold_is_configurable() -> None:
    strict = from_mapping({"thresholds": {"gain_soon_warn": 0.01}})
    assert curves.undertrained(history("flattening"), strict)[0].severity == Severity.WARN
    lenient = from_mapping({"thresholds": {"gain_soon_warn": 0.9}})
    assert curves.undertrained(history("still_falling"), lenient)[0].severity == Severity.OK


def test_project_decay_recovers_a_known_curve() -> None:
    steps = list(range(100, 1100, 100))
    values = [0.5 + 2.0 * 0.7 ** (s / 100) for s in steps]  # floor 0.5, a tenth of what is left every ~6.5 evals
    p = project_decay(steps, values)
    assert p is not None and p.model == "exponential"
    assert math.isclose(p.floor, 0.5, rel_tol=0.02)
    assert math.isclose(p.evaluations_to_90, math.log(0.1) / math.log(0.7), rel_tol=0.05)
    assert math.isclose(p.remaining_share, (values[-1] - 0.5) / values[-1], rel_tol=0.05)
    assert project_decay(steps[:2], values[:2]) is None
    three = project_decay(steps[:3], values[:3])  # three points fix a decay and its floor exactly
    assert three is not None and math.isclose(three.floor, 0.5, rel_tol=0.1)
    flat = project_decay(steps, [1.0] * len(steps))
    assert flat is not None and flat.gain_soon == 0.0


def test_both_losses_near_zero_warns_with_what_to_check() -> None:
    h = history("both_near_zero")
    [f] = curves.memorization(h)
    assert f.severity == Severity.WARN
    assert f.evidence["train_loss_last"] < 0.01 and f.evidence["eval_loss_last"] < 0.01
    assert "leak" in f.title and "template tokens" in f.title and "deduplicate-splits" in f.recipes
    assert any("contained in its input" in c for c in f.evidence["what_to_check"])
    assert "see_also" not in f.evidence  # no accuracy logged


def test_both_near_zero_points_at_loss_vs_accuracy_when_an_accuracy_exists() -> None:
    h = history("both_near_zero")
    h.add_log(h.train.steps[-1], {"eval_accuracy": 0.12})
    [f] = curves.memorization(h)
    assert f.severity == Severity.WARN and f.evidence["see_also"] == "metrics.loss_vs_accuracy"
    assert "metrics.loss_vs_accuracy" in f.title and f.evidence["accuracy_metrics"] == {"eval_accuracy": 0.12}
    assert loss_vs_accuracy(h)[0].severity == Severity.WARN  # the pointed-at probe has the figures too


def test_both_near_zero_threshold_and_healthy_runs() -> None:
    h = history("both_near_zero")
    assert curves.memorization(h, EhrDebugConfig(thresholds={"both_near_zero_loss": 1e-4}))[0].severity == Severity.OK
    for name in ("healthy", "multi_eval", "flattening"):
        assert curves.memorization(history(name))[0].severity == Severity.OK, name


def _evals_only(values: list[float]) -> History:
    from ehrdebug.runstore.history import Series

    train, ev = Series("loss"), Series("eval_loss")
    for i, v in enumerate(values, start=1):
        train.add(i * 100, v * 0.9, float(i))
        ev.add(i * 100, v, float(i))
    return History(train=train, evals={"eval_loss": ev})


def test_three_evaluations_steep_then_flattening_is_not_undertrained() -> None:
    # the fixed run of `ehrdebug demo`: 1.633 -> 1.428 -> 1.365 (12.5%, then 4.4%): a fit says ~4% is left soon
    [f] = curves.undertrained(_evals_only([1.633, 1.428, 1.365]))
    assert f.severity == Severity.OK and "flattening" in f.title
    assert f.evidence["evaluations"] == 3 and f.evidence["fall_over_next_3_evaluations"] < 0.1


def test_three_evaluations_falling_steadily_is_undertrained() -> None:
    [f] = curves.undertrained(_evals_only([2.0, 1.8, 1.6]))
    assert f.severity == Severity.WARN and "train-longer" in f.recipes
