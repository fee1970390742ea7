"""model.task_prefix: inference inputs lacking the training prefix (seed 002)."""

from __future__ import annotations

import sys
from pathlib import Path

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from probes.task_prefix import common_prefix, task_prefix

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401

EX = mf.diagnosis_examples(6, seed=99)
TRAIN = [f"{mf.PREFIX} {e['input']}" for e in mf.diagnosis_examples(20, seed=11)]


def test_common_prefix():
    assert common_prefix(TRAIN).strip() == f"{mf.PREFIX} Symptoms:"
    assert common_prefix(["a b", "c d"]) == ""


def test_missing_prefix_fails_and_changes_outputs():
    model, tok = mf.t5_scenario("prefix")
    findings = task_prefix([e["input"] for e in EX], EhrDebugConfig(task_prefix=mf.PREFIX), model=model, tokenizer=tok)
    f = findings[-1]
    assert f.severity == Severity.FAIL and f.recipes == ["add-task-prefix"]
    assert f.evidence["inference_without_prefix"] == 1.0 and f.evidence["output_changed_with_prefix"] >= 0.5
    assert f.examples[0]["output_with_prefix"] in mf.DIAGNOSES


def test_prefix_from_training_inputs_and_ok_when_present():
    f = task_prefix([e["input"] for e in EX], train_inputs=TRAIN)[-1]
    assert f.severity == Severity.FAIL and f.evidence["expected_prefix"].startswith(mf.PREFIX)
    ok = task_prefix([f"{mf.PREFIX} {e['input']}" for e in EX], EhrDebugConfig(task_prefix=mf.PREFIX))
    assert [x.severity for x in ok] == [Severity.OK]


def test_training_without_configured_prefix_warns():
    out = task_prefix(TRAIN[:2], EhrDebugConfig(task_prefix="summarize:"), train_inputs=TRAIN)
    assert out[0].severity == Severity.WARN and "training inputs lack" in out[0].title
