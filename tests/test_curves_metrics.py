"""metrics.loss_vs_accuracy: low loss with low strict accuracy (seed 003) and its healthy counter-case."""

from __future__ import annotations

from pathlib import Path

from ehrdebug.findings import Severity
from ehrdebug.runstore import open_run
from ehrdebug.runstore.history import History
from probes.metrics import accuracy_metrics, loss_vs_accuracy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "curves"


def test_seed_003_low_loss_zero_strict_accuracy_fails() -> None:
    [f] = loss_vs_accuracy(open_run(FIXTURES / "seed003").history())
    assert f.severity == Severity.FAIL
    assert f.evidence["loss"] == 0.0533 and f.evidence["worst_metric"] == "eval_strict_accuracy"
    assert f.evidence["accuracy_metrics"] == {"eval_strict_accuracy": 0.0, "eval_accuracy": 0.43}
    assert f.evidence["per_token_probability"] > 0.9
    assert f.recipes == ["constrain-to-labels", "strict-output-format"]


def test_low_loss_with_high_accuracy_is_fine() -> None:
    [f] = loss_vs_accuracy(open_run(FIXTURES / "seed003_accurate").history())
    assert f.severity == Severity.OK


def test_no_accuracy_metric_is_ok_with_figures() -> None:
    [f] = loss_vs_accuracy(open_run(FIXTURES / "healthy").history())
    assert f.severity == Severity.OK and f.evidence["loss_key"] == "eval_loss" and f.evidence["accuracy_metrics"] == {}


def test_high_loss_with_low_accuracy_is_not_a_format_problem() -> None:
    h = History()
    h.add_log(100, {"loss": 1.9})
    h.add_log(100, {"eval_loss": 2.1, "eval_exact_match": 3.0})
    [f] = loss_vs_accuracy(h)
    assert f.severity == Severity.OK


def test_metric_names_and_percentages() -> None:
    h = History()
    h.add_log(10, {"eval_loss": 0.1, "eval_exact_match": 40.0, "strict_accuracy": 0.05, "eval_f1": 0.2,
                   "eval_acc": 0.3, "grad_norm": 0.9})
    assert accuracy_metrics(h) == {"eval_exact_match": 0.4, "strict_accuracy": 0.05, "eval_acc": 0.3}
    [f] = loss_vs_accuracy(h)
    assert f.severity == Severity.FAIL and f.evidence["worst_metric"] == "strict_accuracy"


def test_accuracy_measured_elsewhere_is_used() -> None:
    h = History()
    for step in (10, 20, 30):
        h.add_log(step, {"loss": 0.08})
    [f] = loss_vs_accuracy(h, accuracy={"generation_strict_accuracy": 0.3})
    assert f.severity == Severity.WARN and f.evidence["loss_key"] == "loss"
