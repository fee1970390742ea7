"""runtime.mamba_fast_path: facts gathered from a real CPU Mamba, judged on CPU and CUDA fact sets."""

from __future__ import annotations

import sys
from pathlib import Path

from ehrdebug.findings import Severity
from probes.runtime import MambaRuntimeFacts, gather_mamba_facts, judge_mamba_facts, mamba_fast_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401


def test_gather_on_a_real_cpu_mamba():
    facts = gather_mamba_facts(mf.tiny_mamba())
    assert facts.is_mamba and facts.model_type == "mamba" and facts.device == "cpu"
    assert facts.kernel_functions, "transformers' kernel wrappers were not found"
    assert any(name.startswith("mamba_ssm.") for name in facts.kernel_functions)
    if not facts.packages["mamba_ssm"]:
        assert not any(v for k, v in facts.kernel_functions.items() if k.startswith("mamba_ssm."))
    findings = judge_mamba_facts(facts)
    assert findings[0].severity == Severity.INFO and "expected fallback" in findings[0].title


def test_cuda_without_kernels_fails():
    facts = MambaRuntimeFacts(
        is_mamba=True,
        model_type="mamba2",
        device="cuda:0",
        dtype="bfloat16",
        training=True,
        packages={"mamba_ssm": False, "causal_conv1d": False, "mambapy": False},
        kernel_functions={
            "mamba_ssm.mamba_chunk_scan_combined": False,
            "causal_conv1d.causal_conv1d_fn": False,
        },
        forward_seconds=18.4,
        reference_seconds=1.0,
    )
    f = judge_mamba_facts(facts)[0]
    assert f.severity == Severity.FAIL and f.recipes == ["install-cuda-kernels"]
    assert "mamba_ssm, causal_conv1d" in f.title and f.evidence["slowdown_vs_transformer"] == 18.4


def test_cuda_with_kernels_ok_and_non_mamba():
    facts = MambaRuntimeFacts(
        is_mamba=True,
        model_type="mamba",
        device="cuda:0",
        packages={"mamba_ssm": True, "causal_conv1d": True},
        kernel_functions={"mamba_ssm.selective_scan_fn": True, "causal_conv1d.causal_conv1d_fn": True},
    )
    assert judge_mamba_facts(facts)[0].severity == Severity.OK
    v4 = MambaRuntimeFacts(is_mamba=True, model_type="mamba", device="cuda", transformers_fast_path=False)
    assert judge_mamba_facts(v4)[0].severity == Severity.FAIL
    llama = mf.tiny_llama(32)
    assert judge_mamba_facts(gather_mamba_facts(llama))[0].severity == Severity.OK


def test_peft_wrapped_mamba_is_still_recognised():
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(mf.tiny_mamba(), LoraConfig(r=2, target_modules=["in_proj"]))
    facts = gather_mamba_facts(wrapped)
    assert facts.is_mamba and facts.kernel_functions


def test_timed_probe_reports_the_slowdown():
    f = mamba_fast_path(mf.tiny_mamba(), time_it=True, seq_len=32)[0]
    assert f.evidence["forward_seconds"] > 0 and f.evidence["reference_seconds"] > 0
    assert "slowdown_vs_transformer" in f.evidence


def _tiny_ehrmamba(**kw):
    import torch

    from ehrdebug.models.ehrmamba import EhrMambaConfig, EhrMambaForCausalLM

    torch.manual_seed(0)
    return EhrMambaForCausalLM(
        EhrMambaConfig(vocab_size=48, hidden_size=32, num_hidden_layers=2, state_size=8, **kw)
    )


def test_cpu_ehrmamba_states_the_pure_pytorch_path_and_its_measured_step_time():
    model = _tiny_ehrmamba()
    facts = gather_mamba_facts(model)
    assert facts.model_type == "ehrmamba" and any(
        k.startswith("mamba_ssm.") for k in facts.kernel_functions
    )  # found via the backbone
    f = mamba_fast_path(model, time_it=True, seq_len=48, steps_per_epoch=100)[0]
    assert f.severity == Severity.INFO and "pure-PyTorch" in f.title and "s per training step" in f.title
    ev = f.evidence
    assert ev["step_seconds"] > 0 and ev["reference_step_seconds"] > 0 and ev["seq_len"] == 48
    assert ev["epoch_seconds_estimate"] == round(ev["step_seconds"] * 100, 1)
    assert (
        0.5 < ev["reference_parameters"] / ev["parameters"] < 2.0
    )  # the comparison transformer is parameter-matched
    assert ev["use_mambapy"] is True
    assert ev["reference_path"].startswith(
        "mambapy" if ev["packages"]["mambapy"] else "the per-token PyTorch loop"
    )
    loop = gather_mamba_facts(
        mf.tiny_mamba()
    )  # transformers' MambaConfig: use_mambapy=False -> the loop, said so
    assert "per-token PyTorch loop" in judge_mamba_facts(loop)[0].evidence["reference_path"]


def test_probe_builds_the_model_from_a_config_or_a_checkpoint(tmp_path):
    from ehrdebug.models.ehrmamba import EhrMambaConfig

    cfg = EhrMambaConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=1, state_size=8, backbone="mamba2", head_dim=16
    )
    assert mamba_fast_path(config=cfg)[0].evidence["model_type"] == "ehrmamba"
    _tiny_ehrmamba().save_pretrained(tmp_path)
    f = mamba_fast_path(checkpoint=tmp_path, time_it=True, seq_len=16)[0]
    assert f.evidence["is_mamba"] and f.evidence["step_seconds"] > 0


def test_timing_leaves_the_model_as_it_was():
    import torch

    from probes.runtime import time_train_step

    model = _tiny_ehrmamba().eval()
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    time_train_step(model, 16, steps=1)
    assert torch.equal(torch.rand(1), expected) and not model.training
    assert all(p.grad is None for p in model.parameters())


def test_simulated_cuda_without_kernels_names_cause_cost_and_fix(monkeypatch):
    """The availability checks say CUDA and no mamba-ssm/causal-conv1d; the step time is measured for real."""
    import probes.runtime as runtime

    model = _tiny_ehrmamba()
    if any(gather_mamba_facts(model).kernel_functions.values()):
        import pytest

        pytest.skip("the kernels resolve on this machine")
    monkeypatch.setattr(runtime, "_device_of", lambda m: "cuda:0")
    monkeypatch.setattr(runtime, "_importable", lambda name: name not in runtime.KERNEL_PACKAGES)
    f = mamba_fast_path(model, time_it=True, seq_len=32)[0]
    assert f.severity == Severity.FAIL and f.recipes == ["install-cuda-kernels"]
    assert "mamba_ssm, causal_conv1d" in f.title and "s per training step" in f.title and "faster" in f.title
    assert f.evidence["step_seconds"] > 0 and f.evidence["expected_kernel_speedup"] == [20.0, 40.0]
    assert f.evidence["seed_004_epoch_ratio"] == 18.4 and "ehrdebug[cuda]" in f.evidence["fix_command"]
    monkeypatch.setattr(runtime, "_importable", lambda name: True)
    monkeypatch.setattr(runtime, "_kernel_resolution", lambda module: {"mamba_ssm.selective_scan_fn": True})
    assert mamba_fast_path(model)[0].severity == Severity.OK
