"""The code-model zoo cases end to end: a real tiny BEHRT run per case, the probe fires from the run's own
batches / model config / records / predictions, the fix-recipe's retrain silences it, and the healthy BEHRT
runs raise none of these probes.

Slow (real training, a few seconds each on one core).
"""

from __future__ import annotations

import pytest

from ehrdebug.findings import Severity

CODE_FAILURES = [
    "mlm-ignore-index-minus-one",
    "mlm-masking-rate",
    "mlm-special-tokens-masked",
    "mlm-no-80-10-10",
    "age-table-too-small",
    "death-code-in-input",
    "classifier-not-learning",
    "next-visit-popularity-collapse",
    "events-after-prediction-time",
]
HEALTHY = ["behrt-healthy-mlm", "behrt-healthy-mortality", "behrt-healthy-nextvisit"]


def test_code_cases_are_catalogued_with_automatic_fixes():
    from ehrdebug.recipe_ids import FIX
    from recipes.fixes import REGISTRY
    from recipes.zoo import CASES

    for name in CODE_FAILURES:
        case = CASES[name]
        assert case.fix in FIX and case.fix in REGISTRY and case.probe in REGISTRY[case.fix].answers
        assert case.evidence is not None and case.seed in ("001", "004")
    for name in HEALTHY:
        assert CASES[name].notes["probes"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return {"root": tmp_path_factory.mktemp("code-zoo")}


@pytest.mark.slow
@pytest.mark.parametrize("name", CODE_FAILURES)
def test_code_case_fires_then_fix_silences_it(zoo, name):
    from recipes.zoo import CASES, fix_and_rerun, run_case

    case = CASES[name]
    broken = run_case(case, zoo["root"] / name, data_root=zoo["root"] / "zoo-data")
    assert bool(broken.crashed) == case.expect_crash, broken.crashed
    fired = broken.fired()
    assert fired, f"{case.probe} did not fire on {name}: " + "; ".join(
        f"{f.probe}[{f.severity.label}] {f.title}" for f in broken.report.findings if f.probe == case.probe)
    assert all(f.severity >= Severity.WARN and f.evidence for f in fired)
    fixed = fix_and_rerun(broken, zoo["root"] / f"{name}-fix")
    mine = case.evidence(fixed.run_dir)  # the probe on the fixed run's own evidence, whatever the doctor read
    still = [f for f in [*fixed.report.findings, *mine] if f.probe == case.probe and f.severity >= Severity.WARN]
    assert not still, f"{case.probe} still fires after {case.fix}: " + "; ".join(f.title for f in still)
    assert [f for f in mine if f.severity == Severity.OK]  # and says what it measured
    assert case.fix in (fixed.extra["fix"] / "fixes.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_behrt_runs_are_silent(zoo, name):
    from recipes.zoo import CASES, run_case
    from recipes.zoo.code_cases import EVIDENCE

    case = CASES[name]
    run = run_case(case, zoo["root"] / name, data_root=zoo["root"] / "zoo-data")
    assert not run.crashed
    for probe in case.notes["probes"]:
        findings = EVIDENCE[probe](run.run_dir)
        loud = [f for f in findings if f.severity >= Severity.WARN]
        assert not loud, f"{probe}: " + "; ".join(f.title for f in loud)
        assert any(f.severity == Severity.OK and f.evidence for f in findings), probe
