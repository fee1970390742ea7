"""``ehrdebug doctor`` and ``ehrdebug report`` on HF output dirs, ehrdebug runs and bare checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Finding, Severity

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "curves"


def hf_dir(tmp_path: Path, name: str) -> Path:
    """A copy of a fixture as a plain HF output dir (the doctor writes beside it)."""
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


def doctor_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["doctor", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_overfit_run_fails_ranked_with_evidence_and_recipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "overfit_early_best")
    code, report = doctor_json([str(run)], capsys)
    assert code == 1
    severities = [f["severity"] for f in report["findings"]]
    order = {"fail": 0, "warn": 1, "info": 2, "ok": 3}
    assert severities == sorted(severities, key=order.__getitem__)
    top = report["findings"][0]
    assert top["probe"] in ("curves.overfitting", "curves.memorization")
    assert top["evidence"] and top["rule"] and "early-stopping" in top["recipes"]
    assert report["meta"]["kind"] == "hf"


def test_report_is_saved_beside_the_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "overfit_early_best")
    before = (run / "trainer_state.json").read_bytes()
    main(["doctor", str(run)])
    err = capsys.readouterr().err
    saved = run / "ehrdebug-doctor"
    assert f"report saved to {saved}" in err
    data = json.loads((saved / "report.json").read_text())
    assert data["meta"]["generator"] == "ehrdebug doctor"
    assert (saved / "report.md").read_text().startswith("# ehrdebug report")
    assert (run / "trainer_state.json").read_bytes() == before
    main(["doctor", str(run)])  # again: our own folder is reused, nothing new appears
    assert sorted(p.name for p in run.iterdir()) == ["ehrdebug-doctor", "trainer_state.json"]


def test_never_writes_into_a_folder_of_the_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "healthy")
    mine = run / "ehrdebug-doctor"
    mine.mkdir()
    (mine / "report.json").write_text('{"mine": true}')
    main(["doctor", str(run)])
    capsys.readouterr()
    assert (mine / "report.json").read_text() == '{"mine": true}'
    assert (run / "ehrdebug-doctor-2" / "report.json").is_file()


def test_fail_on_warn_and_mild_overfitting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "mild_noisy_overfit")
    assert main(["doctor", str(run)]) == 0
    assert main(["doctor", str(run), "--fail-on", "warn"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("name", ["healthy", "multi_eval", "no_eval", "resumed"])
def test_healthy_hf_runs_pass_fail_on_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, report = doctor_json([str(hf_dir(tmp_path, name)), "--fail-on", "warn"], capsys)
    assert code == 0, [f["title"] for f in report["findings"] if f["severity"] in ("warn", "fail")]


@pytest.mark.parametrize("fmt,marker", [("text", "ehrdebug report:"), ("markdown", "# ehrdebug report"),
                                        ("junit", "<testsuite"), ("github", "::error")])
def test_formats_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, marker: str) -> None:
    run = hf_dir(tmp_path, "diverged_nan")
    out = tmp_path / "out" / f"report.{fmt}"
    assert main(["doctor", str(run), "--format", fmt, "--output", str(out)]) == 1
    assert marker in out.read_text()
    assert capsys.readouterr().out == ""


def test_ehrdebug_run_report_goes_to_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.runstore import RunLogger

    run = tmp_path / "run"
    state = json.loads((FIXTURES / "undertrained" / "trainer_state.json").read_text())
    with RunLogger(run, {"lr": 3e-4}, architecture="gpt2") as log:
        for entry in state["log_history"]:
            metrics = {k: v for k, v in entry.items() if k != "step"}
            if "eval_loss" in entry:
                log.log_eval(entry["step"], metrics)
            elif "loss" in entry:
                log.log_train(entry["step"], **metrics)
    code, report = doctor_json([str(run), "--fail-on", "warn"], capsys)
    assert code == 1
    assert report["findings"][0]["probe"] == "curves.undertrained" and report["findings"][0]["recipes"] == ["train-longer"]
    assert (run / "artifacts" / "doctor" / "report.json").is_file()
    assert report["meta"]["kind"] == "ehrdebug" and report["meta"]["run_status"] == "finished"


def test_skipped_suites_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = doctor_json([str(hf_dir(tmp_path, "healthy"))], capsys)
    [coverage] = [f for f in report["findings"] if f["probe"] == "doctor.coverage"]
    assert coverage["severity"] == "info"
    assert set(coverage["evidence"]["skipped"]) == {"data", "tokenizer", "model", "codes"}
    assert "--data" in coverage["evidence"]["skipped"]["data"]


def test_a_crashing_suite_is_reported_and_the_others_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import probes.data_suite as data_suite
    import probes.doctor as doctor

    def boom(*_a, **_k):
        raise RuntimeError("kaput")

    monkeypatch.setattr(data_suite, "run_data_probes", boom)
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "56 ASIAN M <demo> <v> 486 <\\\\v> <END>"}\n')
    report = doctor.diagnose(hf_dir(tmp_path, "healthy"), data=str(data))
    crashed = [f for f in report.findings if f.probe == "doctor.data"]
    assert crashed and crashed[0].severity == Severity.WARN and "kaput" in crashed[0].evidence["error"]
    assert report.meta["suites"]["data"]["ran"] is False and "kaput" in report.meta["suites"]["data"]["reason"]
    assert report.meta["suites"]["curves"]["ran"]


@pytest.mark.parametrize("args,message", [
    (["doctor", "/nonexistent/run"], "path not found"),
    (["doctor", "{file}"], "got a file"),
    (["doctor", "{empty}"], "is not a run"),
    (["doctor", "{run}", "--data", "/nonexistent.jsonl"], "data file not found"),
    (["doctor", "{run}", "--format", "yaml"], "unknown --format"),
    (["doctor", "{run}", "--fail-on", "info"], "--fail-on"),
    (["report", "/nonexistent"], "path not found"),
    (["report", "{empty}"], "no saved report"),
    (["report", "{file}"], "not an ehrdebug report"),
])
def test_user_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "f.json").write_text("[1, 2]")
    run = hf_dir(tmp_path, "healthy")
    fill = {"{file}": str(tmp_path / "f.json"), "{empty}": str(tmp_path / "empty"), "{run}": str(run)}
    assert main([fill.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (run / "ehrdebug-doctor").exists()


def test_report_rerenders_the_saved_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "overfit_early_best")
    main(["doctor", str(run), "--format", "json"])
    first = json.loads(capsys.readouterr().out)
    assert main(["report", str(run), "--format", "json"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["findings"] == first["findings"]
    assert main(["report", str(run / "ehrdebug-doctor" / "report.json"), "--format", "markdown"]) == 1
    assert capsys.readouterr().out.startswith("# ehrdebug report")
    assert main(["report", str(run / "ehrdebug-doctor"), "--format", "github", "--fail-on", "warn"]) == 1
    assert "::error title=curves.overfitting::" in capsys.readouterr().out


def test_report_falls_back_to_findings_recorded_during_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.runstore import RunLogger

    run = tmp_path / "run"
    with RunLogger(run, {}) as log:
        log.log_train(10, loss=2.0)
        log.log_findings(10, [Finding("model.special_token_probability", "fail", "<v> p=0.000045", {"p": 4.5e-5})])
        log.log_findings(20, [Finding("model.special_token_probability", "ok", "<v> p=0.4", {"p": 0.4})])
    assert main(["report", str(run), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["title"] for f in report["findings"]] == ["<v> p=0.4"]  # the last word of each probe


def test_hf_checkpoint_dir_uses_its_own_trainer_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    ckpt = out / "checkpoint-240"
    ckpt.mkdir(parents=True)
    shutil.copy(FIXTURES / "overfit_early_best" / "trainer_state.json", ckpt / "trainer_state.json")
    code, report = doctor_json([str(out), "--fail-on", "fail"], capsys)  # the output dir, mid-training
    assert code == 1 and report["meta"]["kind"] == "hf"
    assert (out / "ehrdebug-doctor" / "report.json").is_file()
    assert [p.name for p in out.iterdir() if p.name.startswith("checkpoint-")] == ["checkpoint-240"]


def _log_fixture(run: Path, name: str) -> None:
    from ehrdebug.runstore import RunLogger

    state = json.loads((FIXTURES / name / "trainer_state.json").read_text())
    with RunLogger(run, {}, architecture="gpt2") as log:
        for entry in state["log_history"]:
            metrics = {k: v for k, v in entry.items() if k != "step"}
            if any(k.startswith("eval_") for k in entry):
                log.log_eval(entry["step"], metrics)
            elif "loss" in entry:
                log.log_train(entry["step"], **metrics)


def test_checkpoint_of_a_run_sees_the_curves_up_to_its_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    _log_fixture(run, "overfit_early_best")
    early = run / "checkpoints" / "step-24"
    early.mkdir(parents=True)
    (early / "config.json").write_text('{"model_type": "gpt2"}')  # no weights: an input error, not a passing gate
    assert main(["doctor", str(early), "--format", "json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot load" in err[0], err
    code, report = doctor_json([str(run)], capsys)  # the whole run overfits after step 24
    assert code == 1 and report["findings"][0]["probe"] in ("curves.overfitting", "curves.memorization")


def test_config_thresholds_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = hf_dir(tmp_path, "mild_noisy_overfit")
    lenient = tmp_path / "ehrdebug.toml"
    lenient.write_text("[thresholds]\noverfit_rise = 0.5\n")
    assert main(["doctor", str(run), "--fail-on", "warn", "--config", str(lenient)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[thresholds]\noverfit_raise = 0.5\n")
    capsys.readouterr()
    assert main(["doctor", str(run), "--config", str(bad)]) == 2
    assert "overfit_rise" in capsys.readouterr().err


def test_a_caller_can_take_over_a_suite(tmp_path: Path) -> None:
    from probes.doctor import diagnose

    report = diagnose(hf_dir(tmp_path, "overfit_early_best"), skip={"curves": "run by the caller"})
    assert not any(f.probe.startswith("curves.") for f in report.findings)
    assert report.meta["suites"]["curves"] == {"ran": False, "reason": "run by the caller"}


def test_report_on_a_run_finds_its_newest_doctor_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    run = tmp_path / "run"
    _log_fixture(run, "overfit_early_best")
    main(["doctor", str(run)])
    tui_copy = run / "artifacts" / "doctor-report.json"  # what the TUI keeps after re-running the doctor
    data = json.loads((run / "artifacts" / "doctor" / "report.json").read_text())
    data["findings"] = data["findings"][:1]
    tui_copy.write_text(json.dumps(data))
    os.utime(tui_copy, (tui_copy.stat().st_mtime + 5,) * 2)
    capsys.readouterr()
    main(["report", str(run), "--format", "json"])
    assert len(json.loads(capsys.readouterr().out)["findings"]) == 1


def test_console_entry_point_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = hf_dir(tmp_path, "diverged")
    cmd = [sys.executable, "-m", "ehrdebug", "doctor", str(run), "--format", "github"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "::error title=curves.divergence::" in done.stdout
    missing = subprocess.run([*cmd[:4], str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("ehrdebug: error: path not found")
