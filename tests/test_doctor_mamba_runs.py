"""The doctor and the TUI on real EHRMamba / CEHR-BERT runs (issue 12): which probes ran, and what they found.

Tiny runs through the training entry point on the shipped records: an EHRMamba causal-LM pretraining run (long
enough to learn the visit/time grammar), a classifier fine-tuned from it, a CEHR-BERT MLM run. On the causal LM
the doctor judges the structural tokens, free-running continuations and degeneration on code timelines, and the
runtime probe states the Mamba path and its measured step time; on the encoders/classifiers it says why the
generation probes do not apply and runs the code-model probes instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ehrdebug.cli.app import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TINY = ["data.max_train=160", "threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1",
        "max_length=48", "max_minutes=null"]  # fmt: skip
NO_DATA = {"data": "not under test here (the data suite reads the shipped records)"}
pytestmark = pytest.mark.slow


def _train(name: str, out: Path, *overrides: str) -> Path:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    return Path(run_training(load_recipe_config(CONFIGS / f"{name}.yaml", [*TINY, f"out={out}", *overrides])))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("mamba_doctor")
    pre = _train("ehrmamba_pretrain_small", tmp / "pre" / "run", "model.state_size=8", "max_steps=60", "eval_every=30",
                 "lr=1e-2", "warmup_steps=5")  # fmt: skip
    cls = _train("ehrmamba_mortality_small", tmp / "cls" / "run", "model.state_size=8", "max_steps=8", "eval_every=8",
                 "bootstrap=20", "runtime_probe=false", f"init_from={pre}")  # fmt: skip
    mlm = _train("cehrbert_mlm_small", tmp / "mlm" / "run", "model.num_attention_heads=2", "model.intermediate_size=64",
                 "max_steps=8", "eval_every=8")  # fmt: skip
    return {"pre": pre, "cls": cls, "mlm": mlm}


@pytest.fixture(scope="module")
def pre_report(runs: dict[str, Path]) -> dict[str, Any]:
    """``ehrdebug doctor RUN --format json`` on the pretraining run (the report it saves is what the TUI shows)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["doctor", str(runs["pre"]), "--format", "json"]) in (0, 1)
    return json.loads(out.getvalue())


def _found(report: Any, probe: str) -> list[dict[str, Any]]:
    findings = report["findings"] if isinstance(report, dict) else [f.to_dict() for f in report.findings]
    return [f for f in findings if f["probe"] == probe]


def _notes(report: Any) -> list[str]:
    (coverage,) = _found(report, "doctor.coverage")
    return coverage["evidence"].get("notes", [])


def test_doctor_on_the_causal_lm_runs_the_timeline_probes_and_the_runtime_probe(
    pre_report: dict[str, Any],
) -> None:
    suites = pre_report["meta"]["suites"]
    assert all(suites[s]["ran"] for s in ("curves", "data", "tokenizer", "model", "codes")), suites
    (special,) = _found(pre_report, "model.special_token_probability")
    slots = special["evidence"]["fixed_slots"]
    assert special["severity"] == "ok", special["title"]
    assert (
        slots["time after visit_end"]["mean_class_mass"] > 0.8
        and slots["visit_start after time"]["mean_class_mass"] > 0.8
    )
    assert special["evidence"]["layout"] == {
        "max_length": 48,
        "task_token": None,
        "add_cls": False,
    }  # the run's own
    assert special["evidence"]["timelines"] == 64 and special["evidence"]["pad_mass_after_visit_end"] < 0.05
    (tf,) = _found(pre_report, "generation.tf_vs_sampling")
    assert tf["evidence"]["n"] == 16 and tf["evidence"]["decoding"]["do_sample"] is True
    assert tf["evidence"]["tf_fixed_slot_mass"] > 0.8 and tf["evidence"]["structurally_valid"] >= 0.25
    # per-step weakness, not drift: free-running violations stay within 3x the teacher-forced illegal mass
    assert tf["severity"] in ("ok", "warn") and tf["evidence"]["tf_illegal_mass_per_token"] < 0.1
    assert tf["evidence"]["valid_code_rate"] == 1.0 and "[VS]" in tf["examples"][0]["continuation"]
    (degeneration,) = _found(pre_report, "generation.degeneration")
    assert degeneration["severity"] == "ok" and degeneration["evidence"]["distinct_outputs"] == 16
    (runtime,) = _found(pre_report, "runtime.mamba_fast_path")
    evidence = runtime["evidence"]
    assert evidence["is_mamba"] and evidence["seq_len"] == 48 and evidence["step_seconds"] > 0
    assert (
        evidence["reference_path"]
        and "measured" in runtime["title"]
        and evidence["reference_path"] in runtime["title"]
    )
    assert not _found(pre_report, "attribution.integrated_gradients")  # text attribution does not apply
    notes = _notes(pre_report)
    assert any(n.startswith("code timelines: special-token probability on 64 timelines") for n in notes)
    assert any(n.startswith("code probes: data.causal_labels: ran on") for n in notes)
    assert {f["probe"] for f in pre_report["findings"]} >= {
        "curves.undertrained",
        "curves.divergence",
        "data.causal_labels",
    }


def test_doctor_on_a_mamba_checkpoint_reads_that_checkpoint_and_its_curves(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = runs["pre"] / "checkpoints" / "step-30"
    capsys.readouterr()
    assert main(["doctor", str(checkpoint), "--format", "json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["kind"] == "checkpoint" and report["meta"]["model_dir"].endswith("step-30")
    for probe in ("model.special_token_probability", "generation.tf_vs_sampling", "runtime.mamba_fast_path"):
        assert _found(report, probe), probe
    (runtime,) = _found(report, "runtime.mamba_fast_path")
    assert runtime["evidence"]["step_seconds"] > 0 and runtime["evidence"]["seq_len"] == 48
    (stalled,) = _found(report, "curves.stalled")
    assert (
        stalled["evidence"]["train_points"] == 30
    )  # the run's curves up to this checkpoint's step, not all 60
    (undertrained,) = _found(report, "curves.undertrained")
    assert undertrained["evidence"]["eval_sets"]["eval_loss"]["evaluations"] == 1
    assert (
        runs["pre"] / "artifacts" / "doctor-step-30"
    ).is_dir()  # the checkpoint's report, beside the run's


def test_doctor_on_the_mamba_classifier_and_cehrbert_mlm_explains_the_skipped_text_probes(
    runs: dict[str, Path],
) -> None:
    from probes.doctor import diagnose

    cls = diagnose(runs["cls"], skip=NO_DATA)
    assert any("EhrMambaForSequenceClassification has no generate()" in n for n in _notes(cls))
    assert not [f for f in cls.findings if f.probe.startswith(("generation.", "model.special_token"))]
    assert any(n.startswith("code probes: model.pooling: ran on") for n in _notes(cls))
    (pooling,) = _found(cls, "model.pooling")
    assert pooling["severity"] == "ok"  # pools the last real token
    assert _found(cls, "metrics.classifier") and _found(cls, "runtime.mamba_fast_path")
    mlm = diagnose(runs["mlm"], skip=NO_DATA)
    assert any("CehrBertForMaskedLM has no generate()" in n for n in _notes(mlm))
    assert [f["severity"] for f in _found(mlm, "data.mlm_batch")] and not _found(
        mlm, "runtime.mamba_fast_path"
    )
    assert all(f["severity"] == "ok" for f in _found(mlm, "data.id_ranges"))


async def test_the_tui_shows_the_mamba_run_s_doctor_report(
    runs: dict[str, Path], pre_report: dict[str, Any]
) -> None:
    from tui_simulate import open_findings_screen

    from ehrdebug.tui.app import EhrDebugApp

    app = EhrDebugApp(runs["pre"].parent)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_findings_screen(app, pilot, timeout=30)
        shown = {f.probe if hasattr(f, "probe") else f["probe"] for f in app.screen.findings}
        assert app.screen.source.startswith("doctor report")
    assert shown == {f["probe"] for f in pre_report["findings"]}
    assert {
        "model.special_token_probability",
        "generation.tf_vs_sampling",
        "runtime.mamba_fast_path",
    } <= shown


def test_seed_004_padding_in_the_causal_loss_shows_in_the_structural_tokens_and_the_continuations(
    tmp_path: Path,
) -> None:
    """``lm.mask_padding=false`` (seed 004's script): the model learns that a timeline goes on into [PAD]."""
    from probes.doctor import diagnose

    run = _train("ehrmamba_pretrain_small", tmp_path / "padbug", "model.state_size=8", "max_steps=60", "eval_every=30",
                 "lr=1e-2", "warmup_steps=5", "lm.mask_padding=false", "runtime_probe=false")  # fmt: skip
    report = diagnose(run, skip=NO_DATA)
    (special,) = _found(report, "model.special_token_probability")
    assert special["severity"] == "fail" and special["recipes"] == ["mask-padding-in-loss"]
    assert special["evidence"]["pad_mass_after_visit_end"] >= 0.2
    (tf,) = _found(report, "generation.tf_vs_sampling")
    assert tf["severity"] in ("warn", "fail") and tf["recipes"] == ["mask-padding-in-loss"]
    assert tf["evidence"]["pad_generated_share"] >= 0.05
    (labels,) = _found(report, "data.causal_labels")
    assert labels["severity"] == "fail"  # the batches say the same: padding carries loss
