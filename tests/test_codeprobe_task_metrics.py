"""metrics.classifier and metrics.next_visit on real predictions: a bag-of-codes logistic regression on the
shipped codes records learns mortality; constant and random scores do not; popularity is not a model."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from ehrdebug.findings import Severity

CODES = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


def _read(split):
    return [json.loads(line) for line in (CODES / f"{split}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def splits():
    return _read("train"), _read("test")


def test_a_learning_classifier_passes_and_imbalance_is_noted(splits):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from probes.task_metrics import probe_classifier

    train, test = splits
    vec = CountVectorizer(analyzer=lambda codes: codes, binary=True)
    model = LogisticRegression(max_iter=1000, C=0.3).fit(vec.fit_transform([r["codes"] for r in train]),
                                                        [r["mortality"] for r in train])
    prob = model.predict_proba(vec.transform([r["codes"] for r in test]))[:, 1]
    findings = probe_classifier([r["mortality"] for r in test], prob)
    assert [f.severity for f in findings] == [Severity.OK, Severity.INFO]
    ok = findings[0].evidence
    assert ok["auroc"] > 0.6 and ok["auroc_ci"][0] > 0.5 and ok["auprc"] > ok["auprc_of_random_classifier"] * 1.1
    assert "report-auprc" in findings[1].recipes


def test_a_classifier_that_has_not_learned(splits):
    from probes.task_metrics import probe_classifier

    y = [r["mortality"] for r in splits[1]]
    flat = [f for f in probe_classifier(y, [0.1002 + 1e-5 * (i % 3) for i in range(len(y))]) if f.severity >= Severity.WARN]
    assert flat and flat[0].severity == Severity.FAIL and "same probability" in flat[0].title
    assert "increase-learning-rate" in flat[0].recipes
    rng = random.Random(3)
    noise = [f for f in probe_classifier(y, [rng.random() for _ in y]) if f.severity >= Severity.WARN]
    assert noise and noise[0].evidence["auroc_ci"][0] <= 0.5 <= noise[0].evidence["auroc_ci"][1]


def test_popularity_collapse_and_a_model_that_beats_it(splits):
    from probes.task_metrics import probe_next_visit, ranked_from_scores

    train, test = splits
    counts = Counter(c for r in train for c in set(r["next_visit_codes"]))
    popular = [c for c, _ in counts.most_common(20)]
    truth = [r["next_visit_codes"] for r in test]
    collapsed = probe_next_visit(truth, [popular] * len(test), [r["next_visit_codes"] for r in train])
    assert collapsed[0].severity == Severity.FAIL and collapsed[0].evidence["mean_pairwise_jaccard_top_k"] == 1.0
    # the patient's own recent codes first, popularity after: a real (if simple) next-visit predictor
    own = [list(dict.fromkeys([*reversed(r["codes"]), *popular]))[:20] for r in test]
    findings = probe_next_visit(truth, own, counts)
    assert findings[0].severity == Severity.OK
    assert findings[0].evidence["recall_at_10"] > findings[0].evidence["popular_recall_at_10"]
    columns = ["a", "b", "c", "[PAD]"]
    assert ranked_from_scores([[0.1, 0.9, 0.5, 1.0]], columns, 2, exclude=["[PAD]"]) == [["b", "c"]]


def test_meds_prediction_files_are_read(splits, tmp_path):
    from ehrdebug.metrics import write_meds_predictions
    from probes.task_metrics import probe_meds_predictions

    test = splits[1]
    rows = [{"subject_id": r["patient_id"], "prediction_time": "2020-01-01T00:00", "boolean_value": r["mortality"],
             "predicted_boolean_probability": 0.1} for r in test]
    path = tmp_path / "artifacts" / "predictions" / "test.parquet"
    write_meds_predictions(str(path), rows)
    findings = probe_meds_predictions(str(path))
    assert findings[0].severity == Severity.FAIL and findings[0].evidence["n"] == len(test)
    from ehrdebug.errors import UserError

    with pytest.raises(UserError, match="cannot read MEDS predictions"):
        probe_meds_predictions(str(tmp_path / "missing.parquet"))
