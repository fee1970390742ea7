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
        is_mamba=True, model_type="mamba2", device="cuda:0", dtype="bfloat16", training=True,
        packages={"mamba_ssm": False, "causal_conv1d": False, "mambapy": False},
        kernel_functions={"mamba_ssm.mamba_chunk_scan_combined": False, "causal_conv1d.causal_conv1d_fn": False},
        forward_seconds=18.4, reference_seconds=1.0,
    )
    f = judge_mamba_facts(facts)[0]
    assert f.severity == Severity.FAIL and f.recipes == ["install-cuda-kernels"]
    assert "mamba_ssm, causal_conv1d" in f.title and f.evidence["slowdown_vs_transformer"] == 18.4


def test_cuda_with_kernels_ok_and_non_mamba():
    facts = MambaRuntimeFacts(is_mamba=True, model_type="mamba", device="cuda:0",
                              packages={"mamba_ssm": True, "causal_conv1d": True},
                              kernel_functions={"mamba_ssm.selective_scan_fn": True, "causal_conv1d.causal_conv1d_fn": True})
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
