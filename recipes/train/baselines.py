"""Baselines a sequence classifier must beat on the same split: a bag-of-codes logistic regression and the prior.

Why: a BEHRT AUROC means little alone; the synthetic outcome depends on order and timing as well as on
which codes occur, so the bag of codes shows what the sequence model adds (or that it adds nothing).
Both baselines choose their F1 threshold on validation, as the model does.
"""

from __future__ import annotations

from typing import Any


def classify_baselines(train: list[dict[str, Any]], valid: list[dict[str, Any]], test: list[dict[str, Any]],
                       label_field: str) -> dict[str, dict[str, float]]:  # fmt: skip
    """``{"bag_of_codes_lr": {test_auroc, test_auprc, test_f1, test_brier}, "prior": {...}}`` on ``test``."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from ehrdebug.metrics import binary_metrics, choose_threshold

    def labels(records: list[dict[str, Any]]) -> Any:
        return np.array([int(r[label_field]) for r in records])

    def docs(records: list[dict[str, Any]]) -> list[list[str]]:
        return [[str(c) for c in r["codes"]] for r in records]

    y_train, y_valid, y_test = labels(train), labels(valid), labels(test)
    vectorizer = CountVectorizer(analyzer=lambda codes: codes, binary=True)
    x_train = vectorizer.fit_transform(docs(train))
    out: dict[str, dict[str, float]] = {}
    if len(set(y_train.tolist())) == 2:
        lr = LogisticRegression(max_iter=2000, C=1.0).fit(x_train, y_train)
        p_valid = lr.predict_proba(vectorizer.transform(docs(valid)))[:, 1]
        p_test = lr.predict_proba(vectorizer.transform(docs(test)))[:, 1]
        out["bag_of_codes_lr"] = _named(binary_metrics(y_test, p_test, threshold=choose_threshold(y_valid, p_valid)))
    prior = float(y_train.mean()) if y_train.size else 0.0
    out["prior"] = _named(binary_metrics(y_test, np.full(len(y_test), prior), threshold=choose_threshold(y_valid, np.full(len(y_valid), prior))))
    return out


def _named(figures: dict[str, Any]) -> dict[str, float]:
    return {f"test_{k}": float(figures[k]) for k in ("auroc", "auprc", "f1", "brier", "threshold") if figures.get(k) is not None}
