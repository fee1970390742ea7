"""The synthetic data carries real, learnable signal: mortality from history codes + age (seed 004)."""

from __future__ import annotations

from pathlib import Path

from ehrdebug.data.build import codes_records, split_of
from ehrdebug.data.mimic import load_mimic3
from ehrdebug.data.sample import load_task
from ehrdebug.data.synth import synthesize


def mortality_auroc(train: list[dict], test: list[dict]) -> float:
    """Logistic regression on bag-of-codes + age at the last history stay → in-hospital death in the next."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    def features(r: dict) -> dict[str, float]:
        row: dict[str, float] = {c: 1.0 for c in r["codes"]}
        row["age"] = r["ages"][-1] / 10
        return row

    vec = DictVectorizer()
    model = LogisticRegression(C=0.3, max_iter=3000)
    model.fit(vec.fit_transform([features(r) for r in train]), [r["mortality"] for r in train])
    scores = model.predict_proba(vec.transform([features(r) for r in test]))[:, 1]
    return float(roc_auc_score([r["mortality"] for r in test], scores))


def test_mortality_is_learnable_but_not_trivial(tmp_path: Path) -> None:
    synthesize(str(tmp_path), 6000, seed=11)
    patients, _ = load_mimic3(str(tmp_path))
    rows = codes_records(patients)
    train = [r for r in rows if split_of(r["patient_id"]) == "train"]
    test = [r for r in rows if split_of(r["patient_id"]) == "test"]
    positives = sum(r["mortality"] for r in rows) / len(rows)
    assert 0.07 < positives < 0.14  # seed 004: about 10% positives
    auroc = mortality_auroc(train, test)
    assert 0.65 < auroc < 0.95, auroc


def test_shipped_sample_mortality_signal() -> None:
    train = load_task("codes", "train") + load_task("codes", "validation")
    auroc = mortality_auroc(train, load_task("codes", "test"))
    assert auroc > 0.6, auroc


def test_next_visit_codes_are_predictable_from_history() -> None:
    """Chronic codes recur: most next-visit codes were already in the patient's history."""
    rows = load_task("codes", "train")
    seen = sum(len(set(r["next_visit_codes"]) & set(r["codes"])) for r in rows)
    total = sum(len(set(r["next_visit_codes"])) for r in rows)
    assert 0.3 < seen / total < 0.9
