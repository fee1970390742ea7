"""Seed 004's EHRMamba failures in the zoo: padding in the causal loss, no warmup at a high rate, a head pooling
padding, a run stopped while validation loss still fell. Each fires from the run's own evidence (batches, the
saved model on padded batches, the logged curves), its fix-recipe's retrain silences it, and the healthy
EHRMamba runs raise none of these probes. The probes themselves are also checked on synthetic tensors (fast).

The slow end-to-end tests train a one-block Mamba for seconds on one core (``doctor=False``: the case's own
probe only, not the full doctor's minutes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ehrdebug.findings import Severity

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cehr_fixtures as cf  # noqa: E402

MAMBA_FAILURES = [
    "mamba-padding-in-loss",
    "mamba-no-warmup-diverges",
    "mamba-pools-padding",
    "mamba-stopped-early",
]
HEALTHY = ["mamba-healthy-pretrain", "mamba-healthy-mortality"]


@pytest.fixture(autouse=True)
def _single_thread():
    with cf.one_thread():
        yield


def test_mamba_cases_are_catalogued_with_automatic_fixes():
    from ehrdebug.recipe_ids import FIX
    from probes.registry import PROBES
    from recipes.fixes import REGISTRY
    from recipes.zoo import CASES

    probes = {spec.id: spec for spec in PROBES}
    for name in MAMBA_FAILURES:
        case = CASES[name]
        assert case.fix in FIX and case.fix in REGISTRY and case.probe in REGISTRY[case.fix].answers
        assert case.probe in probes and case.fix in probes[case.probe].recipes
        assert case.evidence is not None and case.seed == "004"
    for name in HEALTHY:
        assert CASES[name].notes["probes"]


def _causal_batch(mask_padding: bool):
    import torch

    from ehrdebug.models.cehr_inputs import causal_lm_labels

    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 0, 0, 0]])
    mask = (ids != 0).long()
    labels = causal_lm_labels(ids, mask) if mask_padding else ids.clone()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_causal_labels_probe_counts_padding_targets_and_is_silent_on_masked_labels():
    from probes.causal_batch import probe_causal_labels

    bad = probe_causal_labels([_causal_batch(False)], pad_token_id=0)
    assert bad[0].severity == Severity.FAIL and bad[0].recipes == ["mask-padding-in-loss"]
    assert bad[0].evidence["padding_targets"] == 3 and bad[0].evidence["targets"] == 8  # 4 + 4 shifted labels
    assert bad[0].evidence["pad_id_targets"] == 3
    ok = probe_causal_labels([_causal_batch(True)], pad_token_id=0)
    assert (
        ok[0].severity == Severity.OK
        and ok[0].evidence["targets"] == 5
        and ok[0].evidence["padding_targets"] == 0
    )


def test_pooling_probe_sees_a_head_reading_padding_on_a_tiny_mamba():
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaConfig, EhrMambaForSequenceClassification
    from probes.pooling import probe_pooling

    records = cf.timeline_records(6) + [{"codes": ["C1"] * 30, "days": [0] * 30}]
    tok = cf.tokenizer(records)
    batch = cf.batch(tok, records, max_length=48)
    verdicts = {}
    for pooling in ("last_token", "last_position"):
        torch.manual_seed(0)
        config = EhrMambaConfig.for_tokenizer(
            tok, hidden_size=32, num_hidden_layers=1, state_size=8, num_labels=1, pooling=pooling
        )
        verdicts[pooling] = probe_pooling(EhrMambaForSequenceClassification(config), [batch])[0]
    assert (
        verdicts["last_token"].severity == Severity.OK
        and verdicts["last_token"].evidence["padded_rows_checked"] == 6
    )
    wrong = verdicts["last_position"]
    assert wrong.severity == Severity.FAIL and wrong.recipes == ["pool-last-real-token"]
    assert wrong.evidence["rows_changed"] == 6 and wrong.evidence["max_logit_change"] > 1e-3


def test_fixes_edit_the_keys_and_refuse_configs_without_them():
    from ehrdebug.errors import UserError
    from recipes.fixes import REGISTRY
    from recipes.fixes.base import Target

    cfg = {
        "recipe": "ehrmamba_pretrain",
        "lm": {"mask_padding": False},
        "model": {"pooling": "last_position"},
    }
    target = Target(Path("."), "config")
    assert REGISTRY["mask-padding-in-loss"].on_config(cfg, target) and cfg["lm"]["mask_padding"] is True
    assert REGISTRY["pool-last-real-token"].on_config(cfg, target) and cfg["model"]["pooling"] == "last_token"
    with pytest.raises(UserError, match="lm.mask_padding"):
        REGISTRY["mask-padding-in-loss"].on_config({"recipe": "behrt_mlm"}, target)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return {"root": tmp_path_factory.mktemp("mamba-zoo")}


@pytest.mark.slow
@pytest.mark.parametrize("name", MAMBA_FAILURES)
def test_mamba_case_fires_then_fix_silences_it(zoo, name):
    from recipes.zoo import CASES, fix_and_rerun, run_case

    case = CASES[name]
    broken = run_case(case, zoo["root"] / name, data_root=zoo["root"] / "zoo-data", doctor=False)
    assert not broken.crashed, broken.crashed
    fired = broken.fired()
    assert fired, f"{case.probe} did not fire on {name}: " + "; ".join(
        f"{f.probe}[{f.severity.label}] {f.title}" for f in broken.report.findings
    )
    assert all(f.severity >= Severity.WARN and f.evidence for f in fired)
    fixed = fix_and_rerun(broken, zoo["root"] / f"{name}-fix", doctor=False)
    still = [f for f in fixed.report.findings if f.probe == case.probe and f.severity >= Severity.WARN]
    assert not still, f"{case.probe} still fires after {case.fix}: " + "; ".join(f.title for f in still)
    assert [f for f in fixed.report.findings if f.severity == Severity.OK]  # and says what it measured
    assert case.fix in (fixed.extra["fix"] / "fixes.json").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_mamba_runs_are_silent(zoo, name):
    from recipes.zoo import CASES, run_case
    from recipes.zoo.mamba_cases import EVIDENCE

    case = CASES[name]
    run = run_case(case, zoo["root"] / name, data_root=zoo["root"] / "zoo-data", doctor=False)
    assert not run.crashed
    for probe in case.notes["probes"]:
        findings = EVIDENCE[probe](run.run_dir)
        loud = [f for f in findings if f.severity >= Severity.WARN]
        assert not loud, f"{probe}: " + "; ".join(f.title for f in loud)
        assert any(f.severity == Severity.OK and f.evidence for f in findings), probe
