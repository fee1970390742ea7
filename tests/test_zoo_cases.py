"""The bug zoo end to end: each case's probe fires on a real tiny run, and stops firing after its fix.

Slow (real training). Runs are shared across tests through a session-scoped cache, and cases whose
broken configs are identical train once.
"""

from __future__ import annotations

import pytest

from ehrdebug.findings import Severity

FAILURE_CASES = [
    "fragmented-structural-token",
    "random-new-embeddings",
    "memorization",
    "icd-fragmentation",
    "eos-dominance",
    "collator-string-columns",
    "missing-t5-prefix",
    "all-pad-generation",
    "labels-padded-without-mask",
    "repetition-loop",
    "constant-output",
]


def test_catalogue_is_complete():
    from ehrdebug.recipe_ids import FIX
    from recipes.fixes import REGISTRY
    from recipes.zoo import CASES, get_case

    assert set(FAILURE_CASES) | {"healthy"} <= set(CASES)
    for name in FAILURE_CASES:
        case = CASES[name]
        assert case.fix in FIX and case.fix in REGISTRY  # every case has an automatic fix, never just advice
        assert case.probe and case.overrides
        assert case.seed in ("000", "002")
    from ehrdebug.errors import UserError

    with pytest.raises(UserError, match="did you mean 'memorization'"):
        get_case("memorisation")


def test_zoo_cli_list(capsys):
    from ehrdebug.cli.app import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in FAILURE_CASES:
        assert name in out
    assert main(["zoo", "run", "no-such-case"]) == 2


class _Cache:
    """Broken and fixed runs keyed by the config that produced them (identical configs train once)."""

    def __init__(self, root) -> None:
        self.root = root
        self.broken: dict[tuple, object] = {}
        self.fixed: dict[tuple, object] = {}

    def _key(self, case) -> tuple:
        return (case.config, case.overrides)

    def broken_run(self, case):
        from dataclasses import replace

        from recipes.zoo import run_case

        key = self._key(case)
        if key not in self.broken:
            self.broken[key] = run_case(case, self.root / f"{case.name}")
        run = self.broken[key]
        return replace(run, case=case)

    def fixed_run(self, case):
        from dataclasses import replace

        from recipes.zoo import fix_and_rerun

        key = (*self._key(case), case.fix)
        if key not in self.fixed:
            self.fixed[key] = fix_and_rerun(self.broken_run(case), self.root / f"{case.name}-fix")
        return replace(self.fixed[key], case=case)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> _Cache:
    return _Cache(tmp_path_factory.mktemp("zoo"))


@pytest.mark.slow
@pytest.mark.parametrize("name", FAILURE_CASES)
def test_probe_fires_then_fix_silences_it(zoo, name):
    from recipes.zoo import CASES

    case = CASES[name]
    broken = zoo.broken_run(case)
    fired = broken.fired()
    assert fired, f"{case.probe} did not fire on {name}: " + "; ".join(
        f"{f.probe}[{f.severity.label}] {f.title}" for f in broken.report.findings if f.probe == case.probe)
    assert all(f.severity >= Severity.WARN and (f.evidence or f.examples) for f in fired)  # judged from evidence
    fixed = zoo.fixed_run(case)
    still = fixed.fired() + [f for f in fixed.report.findings  # nor anything else of the probe that names the fix
                             if f.probe == case.probe and f.severity >= Severity.WARN and case.fix in f.recipes]
    assert not still, f"{case.probe} still fires after {case.fix}: " + "; ".join(f.title for f in still)
    record = (fixed.extra["fix"] / "fixes.json").read_text()
    assert case.fix in record


@pytest.mark.slow
def test_healthy_run_raises_nothing_above_info(zoo):
    from recipes.zoo import CASES

    run = zoo.broken_run(CASES["healthy"])
    worst = run.above_info()
    assert not worst, "; ".join(f"{f.probe}[{f.severity.label}] {f.title}" for f in worst)
