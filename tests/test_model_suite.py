"""run_model_probes: all model probes that apply, on a failing and a healthy model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from ehrdebug.recipe_ids import ALL
from probes.model_suite import run_model_probes

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401

CFG = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"], end_token="<END>")


def test_suite_on_eos_dominated_model():
    model, tok, base, start = mf.llama_with_new_tokens(10)
    findings = run_model_probes(model, tok, mf.ehr_examples(6, seed=9), CFG, base_vocab_size=base, reference_state=start,
                                code_vocabulary=set(mf.CODES))
    probes = {f.probe for f in findings}
    assert {"model.trainable", "model.new_embeddings", "model.special_token_probability", "generation.tf_vs_sampling",
            "generation.degeneration", "attribution.integrated_gradients"} <= probes
    assert not any("could not run" in f.title for f in findings), [f.title for f in findings]
    fails = [f for f in findings if f.severity == Severity.FAIL]
    assert any("block-pretrained-eos" in f.recipes for f in fails)
    assert all(r in ALL for f in findings for r in f.recipes)
    assert all(f.to_dict()["evidence"] is not None for f in findings)  # JSON-safe


@pytest.mark.slow
def test_suite_on_healthy_model_raises_nothing_above_info():
    model, tok, base, start = mf.llama_with_new_tokens(300)
    findings = run_model_probes(model, tok, mf.ehr_examples(6, seed=9), CFG, base_vocab_size=base, reference_state=start,
                                code_vocabulary=set(mf.CODES))
    assert max(f.severity for f in findings) <= Severity.INFO, [(f.probe, f.title) for f in findings if f.severity > 1]


def test_suite_on_t5_runs_task_prefix_and_mamba_runtime():
    model, tok = mf.t5_scenario("prefix")
    ex = mf.diagnosis_examples(3, seed=99)
    findings = run_model_probes(model, tok, ex, EhrDebugConfig(task_prefix=mf.PREFIX), with_attribution=False)
    assert any(f.probe == "model.task_prefix" and f.severity == Severity.FAIL for f in findings)
    assert any(f.probe == "generation.degeneration" and "echo" in f.title for f in findings)
    mamba = run_model_probes(mf.tiny_mamba(), None, [], None)
    assert any(f.probe == "runtime.mamba_fast_path" for f in mamba)
