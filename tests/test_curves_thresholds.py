"""Curve thresholds come from [tool.ehrdebug] thresholds, so a team can tune them without code changes."""

from __future__ import annotations

from pathlib import Path

from ehrdebug.config import from_mapping
from ehrdebug.findings import Severity
from ehrdebug.runstore import open_run
from probes.curves import memorization, stalled, undertrained
from probes.metrics import loss_vs_accuracy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "curves"


def _worst(findings: list) -> Severity:
    return max(f.severity for f in findings)


def test_stall_thresholds_are_configurable() -> None:
    history = open_run(FIXTURES / "stalled").history()
    assert _worst(stalled(history)) == Severity.FAIL
    lenient = from_mapping({"thresholds": {"stall_drop_fail": 0.0, "stall_drop_warn": 0.0}})
    assert _worst(stalled(history, lenient)) <= Severity.INFO


def test_memorization_and_undertrained_thresholds_are_configurable() -> None:
    overfit = open_run(FIXTURES / "overfit_early_best").history()
    assert _worst(memorization(overfit)) == Severity.FAIL
    loose = from_mapping({"thresholds": {"memorization_gap_warn": 1e6, "memorization_gap_fail": 1e7}})
    assert _worst(memorization(overfit, loose)) <= Severity.INFO
    falling = open_run(FIXTURES / "undertrained").history()
    assert _worst(undertrained(falling)) == Severity.WARN
    assert _worst(undertrained(falling, from_mapping({"thresholds": {"still_falling": 0.9}}))) <= Severity.INFO


def test_accuracy_thresholds_are_configurable() -> None:
    history = open_run(FIXTURES / "seed003").history()
    assert _worst(loss_vs_accuracy(history)) == Severity.FAIL
    cfg = from_mapping({"thresholds": {"accuracy_warn": -1.0, "accuracy_fail": -1.0}})
    assert _worst(loss_vs_accuracy(history, cfg)) <= Severity.INFO
