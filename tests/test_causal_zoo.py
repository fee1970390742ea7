"""Seed 003's failures in the zoo, end to end on the tiny causal base: each broken run makes its probe fire
from the run's own curves, metrics, checkpoint rows, training arguments or batches; the fix-recipe's retrain
silences it; the healthy run raises none of them. Slow (real training: tens of seconds per run on one core).
"""

from __future__ import annotations

import pytest

from ehrdebug.findings import Severity

FAILURES = ["llama-format-extra-text", "llama-new-tokens-frozen", "llama-prompt-not-masked", "llama-lr-too-high",
            "llama-drop-last-small-data"]  # fmt: skip


def test_causal_cases_are_catalogued_with_automatic_fixes() -> None:
    from recipes.fixes import REGISTRY
    from recipes.zoo import CASES

    for name in FAILURES:
        case = CASES[name]
        assert case.seed == "003" and case.fix in REGISTRY and case.probe in REGISTRY[case.fix].answers, name
    assert CASES["llama-healthy-coding"].notes["probes"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return {"root": tmp_path_factory.mktemp("causal-zoo")}


def _fired(case, findings):
    return [f for f in case.firing(findings)]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAILURES)
def test_causal_case_fires_then_fix_silences_it(zoo, name) -> None:
    from recipes.zoo import CASES, fix_and_rerun, run_case

    case = CASES[name]
    broken = run_case(case, zoo["root"] / name, data_root=zoo["root"] / "zoo-data")
    fired = broken.fired()
    assert fired, f"{case.probe} did not fire on {name}: " + "; ".join(
        f"{f.probe}[{f.severity.label}] {f.title}" for f in broken.report.findings if f.probe == case.probe
    )
    assert all(f.severity >= Severity.WARN and f.evidence for f in fired)
    fixed = fix_and_rerun(broken, zoo["root"] / f"{name}-fix")
    mine = case.evidence(fixed.run_dir) if case.evidence is not None else []
    still = [
        f for f in [*fixed.report.findings, *mine] if f.probe == case.probe and f.severity >= Severity.WARN
    ]
    assert not still, f"{case.probe} still fires after {case.fix}: " + "; ".join(f.title for f in still)
    assert [f for f in [*fixed.report.findings, *mine] if f.probe == case.probe]  # and says what it measured


@pytest.mark.slow
def test_healthy_causal_run_is_silent(zoo) -> None:
    from recipes.zoo import CASES, run_case

    case = CASES["llama-healthy-coding"]
    run = run_case(case, zoo["root"] / case.name, data_root=zoo["root"] / "zoo-data")
    probes = set(case.notes["probes"])
    loud = [f for f in run.report.findings if f.probe in probes and f.severity >= Severity.WARN]
    assert not loud, "; ".join(f"{f.probe}: {f.title}" for f in loud)
    assert {f.probe for f in run.report.findings} >= {"metrics.loss_vs_accuracy", "model.trainable", "data.prompt_loss",
                                                       "data.coverage"}  # fmt: skip
