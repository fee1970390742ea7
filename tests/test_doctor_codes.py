"""The doctor runs the code-model probes on a BEHRT run from the evidence its run directory holds.

Fast part: the evidence files (``ehrdebug.runstore.evidence``) round-trip, and ``probes.doctor_codes`` judges
them without a checkpoint or recipe (a run that died in its first step still has its batches). Slow part:
tiny BEHRT runs through the real training entry point (MLM, mortality fine-tuning from it, next visit, broken
collators), then ``ehrdebug doctor RUN`` and the TUI's service on them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CODES = REPO / "sample_data" / "ehr" / "codes"


def _records(n: int = 48) -> list[dict[str, Any]]:
    with (CODES / "train.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(n), strict=False)]


def _mlm_batches(
    ignore_index: int = -100, n: int = 3, seed: int = 0, mask_share: float = 0.8, random_share: float = 0.1
) -> tuple[list[dict[str, Any]], Any]:
    """Real masked batches from the core BEHRT batching (what the behrt_mlm collator returns)."""
    import torch

    from ehrdebug.codetok import build_code_tokenizer, encode_record
    from ehrdebug.models.batching import collate_codes, mask_codes, model_inputs

    records = _records(16 * n)
    tokenizer = build_code_tokenizer(records)
    features = [encode_record(tokenizer, r, 64) for r in records]
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for i in range(n):
        padded = collate_codes(features[i * 16 : (i + 1) * 16])
        batch = mask_codes(
            padded,
            len(tokenizer),
            0.15,
            mask_share=mask_share,
            random_share=random_share,
            generator=generator,
        )
        if ignore_index != -100:
            batch["labels"] = batch["labels"].masked_fill(batch["labels"] == -100, ignore_index)
        batches.append(model_inputs(batch))
    return batches, tokenizer


def _record(run: Path, config: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> Any:
    from probes.doctor_run import RunRecord

    return RunRecord(path=run, info={"data": data or {}}, config=config or {})


# -- evidence files ----------------------------------------------------------------------------------------
def test_batches_round_trip_with_tokenizer_ids_and_collator_settings(tmp_path: Path) -> None:
    import torch

    from ehrdebug.runstore.evidence import load_batches, mlm_settings, save_batches

    batches, tokenizer = _mlm_batches()
    batches[0]["note"] = ["not a tensor"]
    settings = mlm_settings({"probability": 0.2, "mask_share": 0.7, "random_share": 0.2, "ignore_index": -1})
    assert settings == {"mlm_probability": 0.2, "replace_probs": [0.7, 0.2, 0.1], "ignore_index": -1}
    save_batches(tmp_path, "train", batches, tokenizer=tokenizer, settings=settings)
    saved = load_batches(tmp_path, "train")
    assert saved is not None and len(saved.batches) == 3
    for got, want in zip(saved.batches, batches, strict=True):
        assert set(got) == {k for k in want if k != "note"}
        assert all(torch.equal(got[k], want[k]) for k in got)
    assert saved.index["batches"][0]["not_saved"] == ["note"]
    assert saved.collator == settings
    facts = saved.tokenizer
    assert facts["mask_token_id"] == tokenizer.mask_token_id and facts["vocab_size"] == len(tokenizer)
    assert facts["special_ids"]["[VS]"] == tokenizer.convert_tokens_to_ids("[VS]")
    assert load_batches(tmp_path, "eval") is None


def test_recorder_writes_each_batch_as_it_comes_and_stops_at_its_limit(tmp_path: Path) -> None:
    from ehrdebug.runstore.evidence import BatchRecorder, load_batches

    batches, tokenizer = _mlm_batches(n=3)
    recorder = BatchRecorder(tmp_path, tokenizer=tokenizer, limit=2)
    recorder.add(batches[0])
    assert len(load_batches(tmp_path).batches) == 1  # kept before the step that may crash on it
    recorder.add(batches[1])
    recorder.add(batches[2])
    assert len(load_batches(tmp_path).batches) == 2
    BatchRecorder(tmp_path / "other", enabled=False).add(batches[0])  # another rank / a resumed run
    assert not (tmp_path / "other").exists()


def test_predictions_round_trip_binary_and_next_visit(tmp_path: Path) -> None:
    import numpy as np

    from ehrdebug.errors import UserError
    from ehrdebug.runstore.evidence import (
        load_predictions,
        save_binary_predictions,
        save_next_visit_predictions,
    )

    save_binary_predictions(
        tmp_path, "test", [0, 1, 1], np.array([0.1, 0.8, 0.6]), ids=["a", "b", "c"], threshold=0.5
    )
    kept = load_predictions(tmp_path, "test")
    assert kept.kind == "binary" and kept.meta["threshold"] == 0.5
    assert kept.rows == [{"patient_id": "a", "y_true": 0, "y_prob": 0.1}, {"patient_id": "b", "y_true": 1, "y_prob": 0.8},
                         {"patient_id": "c", "y_true": 1, "y_prob": 0.6}]  # fmt: skip
    vocab = ["[PAD]", "A", "B", "C"]
    scores = np.array([[9.0, 0.1, 0.5, 0.3], [9.0, 0.9, 0.2, 0.4]])
    save_next_visit_predictions(tmp_path, "validation", [["B"], ["A", "C"]], scores, vocab, [["A", "A", "B"], ["A"]],
                                ks=(1, 2), exclude=["[PAD]"])  # fmt: skip
    nv = load_predictions(tmp_path, "validation")
    assert nv.kind == "next_visit" and [r["ranked"] for r in nv.rows] == [["B", "C"], ["A", "C"]]
    assert nv.meta["train_counts"] == {"A": 2, "B": 1} and nv.meta["ks"] == [1, 2]  # patients per code
    assert load_predictions(tmp_path, "train") is None
    (tmp_path / "artifacts" / "evidence" / "predictions-test.jsonl").write_text(
        '{"y_true": 1, "y_prob": 0.5}\nnot json\n'
    )
    with pytest.raises(UserError, match="not valid JSON"):
        load_predictions(tmp_path, "test")


# -- the doctor's code probes on evidence alone ------------------------------------------------------------
def test_minus_one_labels_fire_mlm_batch_from_the_batches_alone(tmp_path: Path) -> None:
    """No checkpoint, no tokenizer files (the run died in its first step): the index's ids suffice."""
    from ehrdebug.findings import Severity
    from ehrdebug.runstore.evidence import mlm_settings, save_batches
    from probes.doctor_codes import code_findings, code_inputs

    batches, tokenizer = _mlm_batches(ignore_index=-1)
    save_batches(
        tmp_path, "train", batches, tokenizer=tokenizer, settings=mlm_settings({"probability": 0.15})
    )
    assert code_inputs(tmp_path) == {"batches"}
    notes: list[str] = []
    findings = code_findings(_record(tmp_path), None, notes=notes)
    fired = [f for f in findings if f.probe == "data.mlm_batch" and f.severity is Severity.FAIL]
    assert fired and "mlm-ignore-index" in fired[0].recipes and fired[0].evidence["no_target_value"] == -1
    assert any(n.startswith("code probes: data.mlm_batch: ran on 3 saved training batches") for n in notes)
    assert any("data.id_ranges: not run: no checkpoint" in n for n in notes)


def test_healthy_batches_are_ok_and_nothing_applies_without_evidence(tmp_path: Path) -> None:
    from ehrdebug.findings import Severity
    from ehrdebug.runstore.evidence import mlm_settings, save_batches
    from probes.doctor_codes import NotApplicable, code_findings

    with pytest.raises(NotApplicable, match="no code-model evidence"):
        code_findings(_record(tmp_path / "empty"), None)
    batches, tokenizer = _mlm_batches()
    save_batches(
        tmp_path, "train", batches, tokenizer=tokenizer, settings=mlm_settings({"probability": 0.15})
    )
    found = code_findings(_record(tmp_path), lambda: (None, tokenizer))
    assert [f.severity for f in found if f.probe == "data.mlm_batch"] == [Severity.OK]


def test_a_run_without_80_10_10_is_judged_against_bert_not_its_own_shares(tmp_path: Path) -> None:
    from ehrdebug.findings import Severity
    from ehrdebug.runstore.evidence import mlm_settings, save_batches
    from probes.doctor_codes import code_findings

    batches, tokenizer = _mlm_batches(n=6, mask_share=1.0, random_share=0.0)
    settings = mlm_settings({"probability": 0.15, "mask_share": 1.0, "random_share": 0.0})
    save_batches(tmp_path, "train", batches, tokenizer=tokenizer, settings=settings)
    found = code_findings(_record(tmp_path), lambda: (None, tokenizer))
    fired = [f for f in found if f.probe == "data.mlm_batch" and f.severity >= Severity.WARN]
    assert fired and "mlm-80-10-10" in fired[0].recipes, [f.title for f in found]


def test_causal_batches_are_not_judged_as_masked_lm(tmp_path: Path) -> None:
    import torch

    from ehrdebug.findings import Severity
    from ehrdebug.runstore.evidence import save_batches
    from probes.doctor_codes import NotApplicable, code_findings

    ids = torch.randint(10, 50, (2, 12))
    mask = torch.ones_like(ids)
    ids[1, 8:], mask[1, 8:] = 0, 0  # right padding whose labels are the pad ids themselves: padding carries loss
    save_batches(tmp_path, "train", [{"input_ids": ids, "attention_mask": mask, "labels": ids.clone()}])
    notes: list[str] = []
    found = code_findings(_record(tmp_path), None, notes=notes)
    probes = {f.probe for f in found}
    assert "data.causal_labels" in probes and "data.mlm_batch" not in probes
    causal = [f for f in found if f.probe == "data.causal_labels"]
    assert max(f.severity for f in causal) >= Severity.WARN  # 4 of 22 targets are padding
    assert any("data.mlm_batch: not run" in n and "causal or seq2seq" in n for n in notes)
    assert any(n.startswith("code probes: data.causal_labels: ran on") for n in notes)

    clean = tmp_path / "clean"
    labels = ids.clone()
    labels[mask == 0] = -100
    save_batches(clean, "train", [{"input_ids": ids, "attention_mask": mask, "labels": labels}])
    ok = [f for f in code_findings(_record(clean), None) if f.probe == "data.causal_labels"]
    assert ok and all(f.severity < Severity.WARN for f in ok)
    with pytest.raises(NotApplicable):
        code_findings(_record(tmp_path / "none"), None)


def test_leakage_reads_the_runs_training_records_minus_its_excluded_codes(tmp_path: Path) -> None:
    from ehrdebug.findings import Severity
    from probes.doctor_codes import code_findings

    leaky = []
    for i, r in enumerate(_records(200)):
        r = dict(r, mortality=int(i % 5 == 0))
        if r["mortality"]:
            r["codes"] = [*r["codes"], "DEATH"]
        leaky.append(r)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in leaky))
    data = {"train": str(train)}
    found = code_findings(_record(tmp_path, {"label_field": "mortality", "data": {}}, data), None)
    assert any(f.probe == "data.label_leakage" and f.severity >= Severity.WARN and "DEATH" in json.dumps(f.to_dict())
               for f in found)  # fmt: skip
    cleaned = code_findings(
        _record(tmp_path, {"label_field": "mortality", "data": {"exclude_codes": ["DEATH"]}}, data), None
    )
    assert all(f.severity < Severity.WARN for f in cleaned if f.probe == "data.label_leakage")


def test_text_probes_skip_encoders_only() -> None:
    from transformers import BartConfig, BartForConditionalGeneration

    from ehrdebug.models.behrt import BehrtConfig, BehrtForMaskedLM
    from probes.doctor_codes import text_probes_skip_reason

    reason = text_probes_skip_reason(BehrtForMaskedLM(BehrtConfig.tier("small", vocab_size=40, hidden_size=16,
                                                                       num_hidden_layers=1, num_attention_heads=2,
                                                                       intermediate_size=16)))  # fmt: skip
    assert reason and "BehrtForMaskedLM has no generate() (an encoder" in reason
    bart = BartForConditionalGeneration(BartConfig(vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1,
                                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                                   encoder_ffn_dim=16, decoder_ffn_dim=16))  # fmt: skip
    assert text_probes_skip_reason(bart) is None


# -- real BEHRT runs through the training entry point ------------------------------------------------------
TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
        "data.max_train=96", "batch_size=16", "log_every=1", "threads=1", "num_log_samples=1"]  # fmt: skip


def _train(name: str, out: Path, *overrides: str) -> Path:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    config = load_recipe_config(
        REPO / "recipes" / "configs" / f"{name}.yaml", [*TINY, *overrides, f"out={out}"]
    )
    return Path(run_training(config))


def _doctor(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    from ehrdebug.cli.app import main

    capsys.readouterr()
    code = main(["doctor", str(path), "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def _by_probe(report: dict[str, Any], probe: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["probe"] == probe]


def _notes(report: dict[str, Any]) -> list[str]:
    return _by_probe(report, "doctor.coverage")[0]["evidence"].get("notes") or []


def _no_crash(report: dict[str, Any]) -> None:
    crashed = [
        f["title"] for f in report["findings"] if "could not run" in f["title"] or "crashed" in f["title"]
    ]
    assert not crashed, crashed
    assert not [s for s, v in report["meta"]["suites"].items() if "crashed" in str(v.get("reason", ""))]


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("behrt_mlm_small", tmp_path_factory.mktemp("codes") / "mlm", "max_steps=8", "eval_every=4",
                  "warmup_steps=0", "lr=3e-3")  # fmt: skip


@pytest.mark.slow
def test_doctor_runs_the_code_probes_on_a_behrt_mlm_run(
    mlm_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.runstore.evidence import load_batches

    saved = load_batches(mlm_run)
    assert saved is not None and len(saved.batches) == 4 and saved.collator["mlm_probability"] == 0.15
    code, report = _doctor(mlm_run, capsys, "--fail-on", "fail")
    _no_crash(report)
    suites = report["meta"]["suites"]
    assert suites["codes"]["ran"] and suites["model"]["ran"]
    assert report["meta"]["model_dir"].startswith(
        str(mlm_run / "checkpoints")
    )  # loaded through ehrdebug.loading
    for probe in ("data.mlm_batch", "data.id_ranges"):
        found = _by_probe(report, probe)
        assert found and all(f["severity"] == "ok" for f in found), found
    assert _by_probe(report, "model.trainable")  # the model suite judged the BEHRT checkpoint itself
    notes = _notes(report)
    assert any("BehrtForMaskedLM has no generate() (an encoder or a classification head)" in n for n in notes)
    assert not [f for f in report["findings"] if f["probe"].startswith(("generation.", "attribution."))]
    assert any(n.startswith("code probes: data.mlm_batch: ran on 4 saved training batches") for n in notes)
    assert any(
        n.startswith("code probes: data.label_leakage: not run: the run learns no binary label")
        for n in notes
    )
    worst = {f["severity"] for f in report["findings"]}
    assert code == (1 if "fail" in worst else 0)
    code_warn, again = _doctor(mlm_run, capsys, "--fail-on", "warn")
    assert code_warn == (1 if worst & {"warn", "fail"} else 0)


@pytest.mark.slow
def test_tui_service_gives_the_cli_findings_on_the_behrt_run(
    mlm_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.tui import services

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_tui_doctor_same_report import comparable

    _, cli = _doctor(mlm_run, capsys)  # saves artifacts/doctor/report.json, which the Findings screen shows
    run = services.open_run(mlm_run)
    in_process = services.diagnose(services.doctor_target(run))
    shown, source = services.saved_findings(run)  # the saved report first, then what the run logged
    assert source.startswith("doctor report")
    assert (
        comparable(cli["findings"])
        == comparable(in_process.findings)
        == comparable(shown[: len(cli["findings"])])
    )
    assert {f["probe"] for f in cli["findings"]} >= {"data.mlm_batch", "data.id_ranges"}


@pytest.mark.slow
async def test_findings_screen_shows_the_code_probes_of_the_behrt_run(
    mlm_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    from ehrdebug.tui.app import EhrDebugApp

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_tui_doctor_same_report import comparable

    _, cli = _doctor(mlm_run, capsys)
    (mlm_run / "artifacts" / "doctor-report.json").unlink(missing_ok=True)
    from tui_simulate import open_findings_screen

    app = EhrDebugApp(mlm_run.parent)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_findings_screen(app, pilot, timeout=20)
        shown = app.screen.findings
        assert comparable(shown[: len(cli["findings"])]) == comparable(cli["findings"])
        assert {"data.mlm_batch", "data.id_ranges"} <= {f.probe for f in shown}


@pytest.mark.slow
def test_doctor_judges_a_fine_tuned_mortality_run_from_its_test_predictions(
        mlm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from ehrdebug.runstore.evidence import load_predictions

    run = _train("behrt_mortality_small", tmp_path / "mort", f"init_from={mlm_run}", "max_steps=6", "eval_every=3",
                 "bootstrap=20")  # fmt: skip
    kept = load_predictions(run, "test")
    summary = json.loads((run / "artifacts" / "metrics_summary.json").read_text())
    assert kept.kind == "binary" and len(kept.rows) == 160 and kept.meta["label_field"] == "mortality"
    code, report = _doctor(run, capsys, "--fail-on", "fail")
    _no_crash(report)
    classifier = [f for f in _by_probe(report, "metrics.classifier") if "auroc" in f["evidence"]]
    assert classifier and classifier[0]["evidence"]["auroc"] == pytest.approx(
        summary["test"]["test_auroc"], abs=1e-3
    )
    leakage = _by_probe(report, "data.label_leakage")
    assert leakage and all(f["severity"] == "ok" for f in leakage)
    notes = _notes(report)
    assert any("BehrtForSequenceClassification has no generate() (an encoder or a classification head)" in n for n in notes)
    assert any(n.startswith("code probes: data.id_ranges: ran on 4 saved training batches") for n in notes)
    pooling = _by_probe(report, "model.pooling")  # BEHRT's head reads [CLS]: padding changes nothing
    assert pooling and all(f["severity"] == "ok" for f in pooling), pooling
    assert any(n.startswith("code probes: model.pooling: ran on 4 saved training batches") for n in notes)
    assert any(n.startswith("code probes: data.causal_labels: not run") for n in notes)
    assert any(
        n.startswith("code probes: data.mlm_batch: not run: the saved batches carry no token-level labels")
        for n in notes
    )
    assert code == (1 if any(f["severity"] == "fail" for f in report["findings"]) else 0)


@pytest.mark.slow
def test_doctor_judges_a_next_visit_run_from_its_ranked_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ehrdebug.runstore.evidence import load_predictions

    run = _train("behrt_nextvisit_small", tmp_path / "nv", "max_steps=4", "eval_every=4")
    kept = load_predictions(run, "test")
    assert kept.kind == "next_visit" and len(kept.rows[0]["ranked"]) == 20 and kept.meta["train_counts"]
    assert not {"[PAD]", "[CLS]", "[VS]"} & {c for r in kept.rows for c in r["ranked"]}
    _, report = _doctor(run, capsys)
    _no_crash(report)
    assert _by_probe(report, "metrics.next_visit")
    assert any(n.startswith("code probes: metrics.next_visit: ran on") for n in _notes(report))


@pytest.mark.slow
def test_doctor_fires_mlm_batch_on_runs_whose_collator_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Special tokens picked as targets (the run trains on) and BEHRT's -1 ignore index (the run dies in its first
    step, before any checkpoint): both are found in the batches the runs kept."""
    specials = _train("behrt_mlm_small", tmp_path / "specials", "mlm.mask_special_tokens=true", "max_steps=2",
                      "eval_every=2", "final_test=false")  # fmt: skip
    _, report = _doctor(specials, capsys)
    _no_crash(report)
    fired = [f for f in _by_probe(report, "data.mlm_batch") if f["severity"] in ("warn", "fail")]
    assert fired and "mlm-skip-special-tokens" in fired[0]["recipes"], _by_probe(report, "data.mlm_batch")

    with pytest.raises(Exception, match="out of bounds|-1"):
        _train("behrt_mlm_small", tmp_path / "minus1", "mlm.ignore_index=-1", "max_steps=2")
    code, report = _doctor(tmp_path / "minus1", capsys, "--fail-on", "fail")
    _no_crash(report)
    fired = [f for f in _by_probe(report, "data.mlm_batch") if f["severity"] == "fail"]
    assert (
        fired and "mlm-ignore-index" in fired[0]["recipes"] and fired[0]["evidence"]["no_target_value"] == -1
    )
    assert code == 1
