"""The synthetic data carries real, learnable signal: mortality from history codes, age, order and timing."""

from __future__ import annotations

import pytest

from ehrdebug.data import synth
from ehrdebug.data.build import codes_records, split_of
from ehrdebug.data.mimic import load_mimic3
from ehrdebug.data.sample import load_task
from ehrdebug.data.synth import synthesize
from ehrdebug.data.synth_outcome import history_features, record_stays


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


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    folder = tmp_path_factory.mktemp("cohort")
    synthesize(str(folder), 6000, seed=11)
    return codes_records(load_mimic3(str(folder))[0])


def test_mortality_is_learnable_but_not_trivial(cohort: list[dict]) -> None:
    rows = cohort
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


def test_mortality_depends_on_order_and_timing(cohort: list[dict]) -> None:
    """The same high-risk codes matter in the most recent stay, not in an older one; a cardiac stay
    followed by an infection within the window matters. A bag of codes cannot see either difference."""
    def rate(key: str, value: float = 1.0) -> float:
        rows = [r for r in cohort if history_features(record_stays(r))[key] == value]
        return sum(r["mortality"] for r in rows) / len(rows)

    base = sum(r["mortality"] for r in cohort) / len(cohort)
    assert rate("recent_high_risk") > 2.5 * rate("older_high_risk")
    assert rate("recent_high_risk") > 2 * base and rate("cardiac_then_infection") > 2 * base


def test_outcome_stream_changes_only_death_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcome draws come from their own stream: without them every other table value is the same."""
    with_outcome = synth.table_rows(synth.generate(400, seed=5))
    monkeypatch.setattr(synth, "reassign_last_stay_death", lambda p, rng: None)
    without = synth.table_rows(synth.generate(400, seed=5))
    death = {"PATIENTS": {"DOD", "DOD_HOSP", "DOD_SSN", "EXPIRE_FLAG"},
             "ADMISSIONS": {"DISCHTIME", "DEATHTIME", "DISCHARGE_LOCATION", "HOSPITAL_EXPIRE_FLAG"}}
    changed = 0
    for table, rows in without.items():
        keep = [i for i, c in enumerate(synth.COLUMNS[table]) if c not in death.get(table, set())]
        assert [[r[i] for i in keep] for r in rows] == [[r[i] for i in keep] for r in with_outcome[table]]
        changed += rows != with_outcome[table]
    assert changed == 2  # ADMISSIONS and PATIENTS death fields did change
