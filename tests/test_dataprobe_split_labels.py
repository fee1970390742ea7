"""data.split and data.labels on reproductions (patient leakage, copied examples, seed 004's 10%
positives, missing labels) and healthy counter-cases; ``check data`` on the shipped sample data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Severity
from probes.data_labels import probe_labels
from probes.data_split import probe_split
from probes.data_suite import run_data_probes

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "ehr"


def _cohort(n_patients: int, seed: int = 0, positive_share: float = 0.1) -> list[dict]:
    """Admissions of synthetic patients: several per patient, mortality on ~positive_share of patients."""
    rng = random.Random(seed)
    codes = ["401.9", "428.0", "427.31", "250.00", "584.9", "518.81", "486", "414.01", "V3000", "038.9"]
    rows = []
    for pid in range(n_patients):
        dead = int(rng.random() < positive_share)
        for visit in range(rng.randint(1, 3)):
            seq = " ".join(rng.sample(codes, rng.randint(3, 7)))
            rows.append({"patient_id": pid, "text": f"<v> {seq} <\\v> visit {visit} p{pid}", "mortality": dead})
    return rows


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_admission_level_split_leaks_patients_patient_level_does_not():
    rows = _cohort(200)
    rng = random.Random(1)
    shuffled = rows[:]
    rng.shuffle(shuffled)  # the common mistake: split admissions, not patients
    cut = int(0.8 * len(shuffled))
    leaky = probe_split({"train": shuffled[:cut], "validation": shuffled[cut:]})
    fail = [f for f in leaky if f.severity == Severity.FAIL]
    assert fail and fail[0].recipes == ["split-by-patient"]
    shared = fail[0].evidence["shared_patients"]
    truth = {r["patient_id"] for r in shuffled[:cut]} & {r["patient_id"] for r in shuffled[cut:]}
    assert shared == len(truth) > 0
    by_patient = {"train": [r for r in rows if r["patient_id"] < 160], "validation": [r for r in rows if r["patient_id"] >= 160]}
    healthy = probe_split(by_patient)
    assert [f.severity for f in healthy] == [Severity.OK]
    assert healthy[0].evidence["patient_field"] == "patient_id"


def test_copied_examples_across_splits():
    rows = _cohort(100)
    train, test = rows[:150], rows[150:]
    copies = [dict(r, patient_id=10_000 + i) for i, r in enumerate(train[:20])]  # same notes, new ids
    findings = probe_split({"train": train, "test": test + copies}, text_field="text")
    dup = [f for f in findings if "also appear in train" in f.title]
    assert dup and dup[0].severity == Severity.WARN and dup[0].evidence["duplicated_examples"] == 20
    assert dup[0].recipes == ["deduplicate-splits"] and dup[0].examples[0]["text"] == train[0]["text"]
    few = probe_split({"train": train, "test": test + copies[:1]}, text_field="text")
    assert any(f.severity == Severity.INFO and "1 of" in f.title for f in few)  # under 5%: noted, not a warning


def test_seed004_ten_percent_positives_recommends_auprc():
    rows = [{"mortality": int(i % 10 == 0)} for i in range(1000)]  # 90% negative, 10% positive
    findings = probe_labels({"train": rows[:700], "validation": rows[700:800], "test": rows[800:]})
    rec = [f for f in findings if "report-auprc" in f.recipes]
    assert rec and rec[0].severity == Severity.INFO
    assert rec[0].evidence["minority_share"] == 0.1 and rec[0].evidence["auprc_of_random_classifier"] == 0.1
    assert rec[0].evidence["per_split"]["train"]["classes"] == {"0": 630, "1": 70}
    rare = probe_labels({"train": [{"label": int(i < 10)} for i in range(1000)]})
    assert rare[0].severity == Severity.WARN  # 1% positives
    balanced = probe_labels({"train": [{"label": i % 2} for i in range(100)]})
    assert [f.severity for f in balanced] == [Severity.OK]


def test_missing_labels_and_single_class_eval_split():
    rows = [{"label": None if i % 25 == 0 else i % 2} for i in range(100)]
    findings = probe_labels({"train": rows, "test": [{"label": 0}] * 10}, label_field="label")
    missing = [f for f in findings if "have no 'label' label" in f.title]
    assert missing and missing[0].severity == Severity.WARN and missing[0].evidence["missing"] == 4
    assert any("only class 0" in f.title for f in findings)


def test_check_data_cli_exit_codes(tmp_path, capsys):
    rows = _cohort(150)
    train = _write(tmp_path / "train.jsonl", rows[:200])
    leak = _write(tmp_path / "leak.jsonl", rows[190:])
    clean = _write(tmp_path / "clean.jsonl", [r for r in rows[200:] if r["patient_id"] not in {x["patient_id"] for x in rows[:200]}])
    assert main(["check", "data", "--train", train, "--validation", leak, "--format", "json"]) == 1
    assert "split-by-patient" in capsys.readouterr().out
    assert main(["check", "data", "--train", train, "--validation", clean, "--label-field", "mortality", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {f["probe"] for f in report["findings"]} == {"data.split", "data.labels", "data.coverage"}
    assert main(["check", "data", "--train", train, "--validation", clean, "--fail-on", "warn",
                 "--patient-field", "nope"]) == 2
    assert main(["check", "data", "--train", str(tmp_path / "missing.jsonl")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_run_data_probes_accepts_lists_and_plans():
    rows = _cohort(50)
    findings = run_data_probes(rows, None, None, plan={"per_device_train_batch_size": 4, "dataloader_drop_last": True})
    cov = [f for f in findings if f.probe == "data.coverage"]
    assert cov[0].evidence["samples"] == len(rows) and cov[0].evidence["drop_last"] is True


@pytest.mark.parametrize("task", ["seq2seq", "codes", "diagnosis", "coding"])
def test_shipped_sample_data_passes(task, capsys):
    folder = SAMPLE / task
    if not (folder / "train.jsonl").is_file():
        pytest.skip(f"sample data {folder} not built")
    args = ["check", "data", "--train", str(folder / "train.jsonl"), "--validation", str(folder / "validation.jsonl"),
            "--test", str(folder / "test.jsonl"), "--per-device-batch", "8", "--format", "json", "--fail-on", "warn"]
    code = main(args)
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [f["title"] for f in report["findings"] if f["severity"] in ("warn", "fail")]
    if task == "codes":
        labels = [f for f in report["findings"] if f["probe"] == "data.labels"]
        assert labels[0]["evidence"]["label_field"] == "mortality"


def test_run_data_probes_for_a_run_directory(tmp_path):
    from probes.data_suite import run_data_probes_for_run

    rows = _cohort(60)
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "train.jsonl", [r for r in rows if r["patient_id"] < 50])
    _write(tmp_path / "data" / "validation.jsonl", [r for r in rows if r["patient_id"] >= 45])  # 5 patients leak
    run = {"format_version": 1, "data": "data",
           "config": {"training_args": {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
                                        "num_train_epochs": 3, "dataloader_drop_last": True}}}
    (tmp_path / "run.json").write_text(json.dumps(run), encoding="utf-8")
    findings = run_data_probes_for_run(str(tmp_path))
    leak = [f for f in findings if f.probe == "data.split" and f.severity == Severity.FAIL]
    assert leak and leak[0].evidence["shared_patients"] == 5
    cov = [f for f in findings if f.probe == "data.coverage"]
    assert cov[0].evidence["gradient_accumulation_steps"] == 4
    assert run_data_probes_for_run(str(tmp_path / "data")) == []  # no run.json: nothing to say


def _seq2seq(split: str) -> list[dict]:
    path = SAMPLE / "seq2seq" / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(f"sample data {path} not built")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_shipped_seq2seq_repeated_prompts_are_info_not_a_leak():
    """The bart run's config names the prompt column; demographics prompts recur, prompt+target do not."""
    from ehrdebug.config import EhrDebugConfig

    splits = {s: _seq2seq(s) for s in ("train", "validation", "test")}
    cfg = EhrDebugConfig(text_field="prompt", target_field="target", patient_field="patient_id")
    findings = run_data_probes(splits["train"], splits["validation"], splits["test"], config=cfg)
    split = [f for f in findings if f.probe == "data.split"]
    assert all(f.severity in (Severity.OK, Severity.INFO) for f in split), [f.title for f in split]
    summary = [f for f in split if "splits" in f.evidence]
    assert summary[0].evidence["compared_on"] == "prompt + target"
    prompts = [f for f in split if "prompts (prompt) also occur in train" in f.title]
    train_prompts = {r["prompt"] for r in splits["train"]}
    truth = sum(r["prompt"] in train_prompts for r in splits["validation"])
    assert truth > 0.5 * len(splits["validation"])  # the old false alarm: most validation prompts recur
    val = [f for f in prompts if f.evidence["pair"] == "train/validation"]
    assert val and val[0].severity == Severity.INFO and val[0].evidence["repeated_prompts"] == truth
    # the prompt alone, named without its target and with no target column to guess, is still compared alone
    only_prompt = [{"patient_id": r["patient_id"], "prompt": r["prompt"]} for r in splits["validation"]]
    alone = probe_split({"train": [{"patient_id": r["patient_id"], "prompt": r["prompt"]} for r in splits["train"]],
                         "validation": only_prompt}, text_field="prompt")
    assert any(f.severity == Severity.WARN and f.recipes == ["deduplicate-splits"] for f in alone)


def test_seq2seq_real_leaks_still_warn_and_fail():
    """Same prompt AND target copied into validation under new ids warns; the same patient fails."""
    train, val = _seq2seq("train"), _seq2seq("validation")
    copies = [dict(r, patient_id=900_000 + i) for i, r in enumerate(train[:40])]
    findings = probe_split({"train": train, "validation": val + copies}, text_field="prompt", target_field="target")
    dup = [f for f in findings if "examples also appear in train" in f.title]
    assert dup and dup[0].severity == Severity.WARN and dup[0].recipes == ["deduplicate-splits"]
    natural = sum((r["prompt"], r["target"]) in {(t["prompt"], t["target"]) for t in train} for r in val)
    assert dup[0].evidence["duplicated_examples"] == 40 + natural
    assert not any(f.severity == Severity.FAIL for f in findings)
    same_patient = [dict(val[0], patient_id=train[0]["patient_id"])]
    leak = probe_split({"train": train, "validation": val[1:] + same_patient}, text_field="prompt")
    fail = [f for f in leak if f.severity == Severity.FAIL]
    assert fail and fail[0].recipes == ["split-by-patient"] and fail[0].evidence["shared_patients"] == 1
    with pytest.raises(Exception, match="target field 'nope'"):
        probe_split({"train": train, "validation": val}, text_field="prompt", target_field="nope")


def test_check_data_cli_seq2seq_with_prompt_field(capsys):
    folder = SAMPLE / "seq2seq"
    if not (folder / "train.jsonl").is_file():
        pytest.skip("sample data not built")
    code = main(["check", "data", "--train", str(folder / "train.jsonl"), "--validation", str(folder / "validation.jsonl"),
                 "--text-field", "prompt", "--format", "json", "--fail-on", "warn"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, [f["title"] for f in report["findings"] if f["severity"] in ("warn", "fail")]
    assert any("prompts (prompt) also occur" in f["title"] for f in report["findings"])
