"""Task metrics against hand-checked values, degenerate splits, bootstrap behaviour, MEDS predictions."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ehrdebug import metrics as m


def test_binary_metrics_known_values() -> None:
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    out = m.binary_metrics(y, p)
    assert out["auroc"] == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered right
    assert out["auprc"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # precision at each positive's rank
    assert out["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert out["f1"] == pytest.approx(2 / 3)  # threshold 0.5: one TP, one FN, no FP
    assert (out["positives"], out["n"], out["prevalence"], out["threshold"]) == (2, 4, 0.5, 0.5)
    assert m.binary_metrics(y, p, threshold=0.3)["f1"] == pytest.approx(0.8)


def test_choose_threshold_maximises_f1_on_validation() -> None:
    y = [0, 0, 1, 1, 0, 1]
    p = [0.1, 0.2, 0.3, 0.35, 0.32, 0.9]
    cut = m.choose_threshold(y, p)
    assert cut == pytest.approx(0.3)  # everything from 0.3 up: 3 TP, 1 FP → F1 6/7
    assert m.binary_metrics(y, p, cut)["f1"] == pytest.approx(6 / 7)


def test_single_class_never_crashes() -> None:
    out = m.binary_metrics([0, 0, 0], [0.2, 0.1, 0.7])
    assert out["auroc"] is None and out["auprc"] is None and "one class" in out["note"]
    assert out["positives"] == 0 and out["brier"] == pytest.approx((0.04 + 0.01 + 0.49) / 3)
    assert m.choose_threshold([1, 1], [0.3, 0.4]) == 0.5
    ci = m.bootstrap_ci(m.auroc, [1, 1, 1], [0.2, 0.4, 0.9], n=50)
    assert ci["value"] is None and ci["n_valid"] == 0 and ci["low"] is None
    assert m.binary_metrics([], [])["note"] == "no examples"


def test_bootstrap_ci_is_seeded_and_brackets_the_value() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 300), 0, 1)
    a = m.bootstrap_ci(m.auroc, y, p, n=100, seed=7)
    b = m.bootstrap_ci(m.auroc, y, p, n=100, seed=7)
    assert a == b and a["low"] < a["value"] < a["high"] and a["n_valid"] == 100
    assert m.bootstrap_ci(m.auroc, y, p, n=100, seed=8)["low"] != a["low"]


def test_paired_bootstrap_separates_a_better_model_from_a_copy() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, 400), 0, 1)
    noise = rng.random(400)
    better = m.paired_bootstrap(m.auroc, y, good, noise, n=120, seed=1)
    assert better["delta"] > 0.3 and better["p_value"] < 0.01 and better["low"] > 0
    same = m.paired_bootstrap(m.auroc, y, good, good, n=120, seed=1)
    assert same["delta"] == 0 and same["p_value"] == 1.0


def test_multilabel_metrics_known_values() -> None:
    vocab = ["a", "b", "c", "d"]
    scores = [[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.7, 0.6]]
    out = m.multilabel_metrics([["a"], ["d", "b"]], scores, k=(1, 2), vocab=vocab)
    assert out["recall_at_1"] == pytest.approx((1 + 0) / 2)
    assert out["recall_at_2"] == pytest.approx((1 + 0.5) / 2)
    from sklearn.metrics import average_precision_score, roc_auc_score

    flat = [1, 0, 0, 0, 0, 1, 0, 1]
    assert out["aps"] == pytest.approx(average_precision_score(flat, np.ravel(scores)))
    assert out["micro_auroc"] == pytest.approx(roc_auc_score(flat, np.ravel(scores)))
    oov = m.multilabel_metrics([["a", "zzz"]], [[0.9, 0.1, 0.1, 0.1]], k=(1,), vocab=vocab)
    assert oov["out_of_vocab"] == 1 and oov["recall_at_1"] == pytest.approx(0.5)  # an unknown code is a miss


def test_frequency_baseline_recall() -> None:
    vocab = ["a", "b", "c"]
    train = [["a", "b"], ["a"], ["a", "c"], ["b"]]
    scores = m.frequency_scores(train, vocab, n_rows=2)
    assert scores.shape == (2, 3) and list(scores[0]) == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    out = m.multilabel_metrics([["a"], ["c"]], scores, k=(1, 2), vocab=vocab)
    assert out["recall_at_1"] == 0.5 and out["recall_at_2"] == 0.5


def test_mlm_metrics_accuracy_and_perplexity() -> None:
    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]))
    labels = np.array([[0, 2, -100]])
    out = m.mlm_metrics(logits, labels)
    assert out["masked"] == 2 and out["mlm_accuracy"] == 0.5
    loss = -(math.log(0.7) + math.log(0.1)) / 2
    assert out["mlm_loss"] == pytest.approx(loss) and out["perplexity"] == pytest.approx(math.exp(loss))
    assert m.mlm_metrics(logits, np.full((1, 3), -1), ignore_index=-1)["mlm_accuracy"] is None
    assert m.perplexity(float("nan")) is None and m.perplexity(0.0) == 1.0


def test_write_meds_predictions_schema(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    rows = [{"subject_id": 1, "prediction_time": datetime(2020, 1, 1, 12), "boolean_value": True,
             "predicted_boolean_probability": 0.9},
            {"subject_id": 2, "prediction_time": "2020-01-02T08:00:00", "boolean_value": False,
             "predicted_boolean_probability": 0.2}]
    path = tmp_path / "predictions" / "test.parquet"
    assert m.write_meds_predictions(str(path), rows, threshold=0.5) == 2
    table = pq.read_table(path)
    assert table.column_names == list(m.MEDS_PREDICTION_COLUMNS)
    assert str(table.schema.field("prediction_time").type) == "timestamp[us]"
    assert str(table.schema.field("predicted_boolean_probability").type) == "float"
    assert table.column("predicted_boolean_value").to_pylist() == [True, False]
    assert table.column("prediction_time").to_pylist()[1] == datetime(2020, 1, 2, 8)
    meds = pytest.importorskip("meds")
    names = (meds.LabelSchema.subject_id_name, meds.LabelSchema.prediction_time_name,
             meds.LabelSchema.boolean_value_name)
    assert tuple(table.column_names[:3]) == names


def test_meds_predictions_pass_the_meds_evaluation_schema(tmp_path: Path) -> None:
    schema = pytest.importorskip("meds_evaluation.schema")
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    m.write_meds_predictions(str(path), [{"subject_id": 7, "prediction_time": datetime(2021, 5, 1), "boolean_value": False,
                                          "predicted_boolean_probability": 0.3}])
    schema.PredictionSchema.validate(pq.read_table(path))  # raises on a wrong name or type
