"""Task metrics for code-sequence models, computed with scikit-learn so the figures match everyone else's.

Binary tasks (mortality, any MEDS boolean task): AUROC, AUPRC, F1 at a threshold chosen on validation,
Brier score; bootstrap 95% intervals and a paired bootstrap test between two models on the same labels.
Next visit (multi-label over the code vocabulary): average precision (APS), micro AUROC, recall@k, and a
code-frequency baseline. MLM: masked-token accuracy and perplexity.

A metric that is undefined on the data (AUROC with one class in ``y_true``) comes back as ``None`` with
a ``note`` saying why; nothing here raises on such data, because a probe or a report must still say
something useful about a tiny or degenerate split.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

MEDS_PREDICTION_COLUMNS = ("subject_id", "prediction_time", "boolean_value", "predicted_boolean_value",
                           "predicted_boolean_probability")


def _arrays(y_true: Sequence[Any], y_prob: Sequence[Any]) -> tuple[Any, Any]:
    import numpy as np

    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_prob, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_prob has {p.size}")
    return y, p


def _one_class(y: Any) -> bool:
    return y.size == 0 or y.min() == y.max()


def choose_threshold(y_true: Sequence[Any], y_prob: Sequence[Any]) -> float:
    """The probability cut that maximises F1 (choose it on validation, apply it to test); 0.5 if undefined."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    y, p = _arrays(y_true, y_prob)
    if _one_class(y):
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    return float(thresholds[int(np.argmax(f1))]) if thresholds.size else 0.5


def binary_metrics(y_true: Sequence[Any], y_prob: Sequence[Any], threshold: float | None = None) -> dict[str, Any]:
    """AUROC, AUPRC, F1 (at ``threshold``; 0.5 when not given), Brier, positives, prevalence.

    ``auroc``/``auprc`` are None when ``y_true`` holds one class (``note`` says so); Brier and F1 are
    still defined then.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score

    y, p = _arrays(y_true, y_prob)
    cut = 0.5 if threshold is None else float(threshold)
    out: dict[str, Any] = {"n": int(y.size), "positives": int(y.sum()),
                           "prevalence": float(y.mean()) if y.size else None, "threshold": cut}
    if y.size == 0:
        return {**out, "auroc": None, "auprc": None, "f1": None, "brier": None, "note": "no examples"}
    out["f1"] = float(f1_score(y, p >= cut, zero_division=0.0))
    out["brier"] = float(brier_score_loss(y, p, pos_label=1.0)) if (p >= 0).all() and (p <= 1).all() else None
    if _one_class(y):
        out.update(auroc=None, auprc=None, note=f"y_true has one class ({int(y[0])}): AUROC and AUPRC are undefined")
    else:
        out.update(auroc=float(roc_auc_score(y, p)), auprc=float(average_precision_score(y, p)))
    return out


def _metric_or_none(fn: Callable[..., Any], *args: Any) -> float | None:
    value = fn(*args)
    if isinstance(value, Mapping):
        raise TypeError("bootstrap fn must return one number (e.g. lambda y, p: binary_metrics(y, p)['auroc'])")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def auroc(y_true: Sequence[Any], y_prob: Sequence[Any]) -> float | None:
    """AUROC or None with one class: a convenient (and fast) ``fn`` for ``bootstrap_ci``."""
    from sklearn.metrics import roc_auc_score

    y, p = _arrays(y_true, y_prob)
    return None if _one_class(y) else float(roc_auc_score(y, p))


def auprc(y_true: Sequence[Any], y_prob: Sequence[Any]) -> float | None:
    """AUPRC (average precision) or None with one class."""
    from sklearn.metrics import average_precision_score

    y, p = _arrays(y_true, y_prob)
    return None if _one_class(y) else float(average_precision_score(y, p))


def bootstrap_ci(fn: Callable[[Any, Any], float | None], y_true: Sequence[Any], y_prob: Sequence[Any],
                 n: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Percentile bootstrap interval of ``fn(y_true, y_prob)`` over resampled examples (seeded).

    Resamples where ``fn`` is undefined (one class drawn) are skipped and counted in ``n_valid``.
    """
    import numpy as np

    y, p = _arrays(y_true, y_prob)
    point = _metric_or_none(fn, y, p) if y.size else None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n if y.size else 0):
        idx = rng.integers(0, y.size, y.size)
        value = _metric_or_none(fn, y[idx], p[idx])
        if value is not None:
            values.append(value)
    out: dict[str, Any] = {"value": point, "low": None, "high": None, "n": n, "n_valid": len(values),
                           "level": level}
    if values:
        tail = (1 - level) / 2 * 100
        out["low"], out["high"] = (float(v) for v in np.percentile(values, [tail, 100 - tail]))
    else:
        out["note"] = "metric undefined on every resample"
    return out


def paired_bootstrap(fn: Callable[[Any, Any], float | None], y_true: Sequence[Any], prob_a: Sequence[Any],
                     prob_b: Sequence[Any], n: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Is model A better than model B on the same labels? Resample examples jointly for both.

    Returns the observed ``delta`` = fn(A) − fn(B), its percentile interval, and a two-sided
    ``p_value`` (twice the smaller share of resampled deltas on either side of zero, at most 1).
    """
    import numpy as np

    y, a = _arrays(y_true, prob_a)
    _, b = _arrays(y_true, prob_b)
    fa, fb = (_metric_or_none(fn, y, a), _metric_or_none(fn, y, b)) if y.size else (None, None)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n if y.size else 0):
        idx = rng.integers(0, y.size, y.size)
        va, vb = _metric_or_none(fn, y[idx], a[idx]), _metric_or_none(fn, y[idx], b[idx])
        if va is not None and vb is not None:
            deltas.append(va - vb)
    out: dict[str, Any] = {"a": fa, "b": fb, "delta": None if fa is None or fb is None else fa - fb,
                           "low": None, "high": None, "p_value": None, "n": n, "n_valid": len(deltas)}
    if not deltas:
        out["note"] = "metric undefined on every resample"
        return out
    d = np.asarray(deltas)
    tail = (1 - level) / 2 * 100
    out["low"], out["high"] = (float(v) for v in np.percentile(d, [tail, 100 - tail]))
    share = min(float((d <= 0).mean()), float((d >= 0).mean()))
    out["p_value"] = min(1.0, 2 * share)
    return out


def _indicator(y_true_sets: Sequence[Iterable[Any]], width: int, vocab: Sequence[str] | None) -> Any:
    import numpy as np

    index = {c: i for i, c in enumerate(vocab)} if vocab is not None else None
    y = np.zeros((len(y_true_sets), width), dtype=int)
    for row, items in enumerate(y_true_sets):
        for item in items:
            col = index.get(item) if index is not None else int(item)
            if col is not None and 0 <= col < width:
                y[row, col] = 1
    return y


def multilabel_metrics(y_true_sets: Sequence[Iterable[Any]], scores: Any, k: Sequence[int] = (10, 20),
                       vocab: Sequence[str] | None = None) -> dict[str, Any]:
    """Next-visit metrics: ``aps`` (micro average precision), ``micro_auroc``, ``recall_at_K`` for each K.

    ``scores`` is (examples × vocabulary); ``y_true_sets`` holds each example's true codes, as strings
    looked up in ``vocab`` or as column indices. Codes outside the vocabulary count as missed (recall)
    but cannot enter APS/AUROC; ``out_of_vocab`` says how many there were. recall@K is the share of an
    example's true codes found in its K best-scored, averaged over examples with at least one true code.
    """
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or s.shape[0] != len(y_true_sets):
        raise ValueError(f"scores must be (examples, vocabulary) with {len(y_true_sets)} rows, got {s.shape}")
    y = _indicator(y_true_sets, s.shape[1], vocab)
    sizes = [len(set(items)) for items in y_true_sets]
    out: dict[str, Any] = {"n": len(sizes), "labels": int(y.sum()), "out_of_vocab": int(sum(sizes) - y.sum())}
    flat_y = y.ravel()
    if _one_class(flat_y.astype(float)):
        out.update(aps=None, micro_auroc=None, note="no true codes (or every code true): APS/AUROC undefined")
    else:
        out["aps"] = float(average_precision_score(flat_y, s.ravel()))
        out["micro_auroc"] = float(roc_auc_score(flat_y, s.ravel()))
    order = np.argsort(-s, axis=1, kind="stable")
    rows = [i for i, size in enumerate(sizes) if size]
    for top in k:
        if not rows:
            out[f"recall_at_{top}"] = None
            continue
        hits = y[np.arange(len(sizes))[:, None], order[:, :top]].sum(axis=1)
        out[f"recall_at_{top}"] = float(np.mean([hits[i] / sizes[i] for i in rows]))
    return out


def frequency_scores(train_sets: Iterable[Iterable[str]], vocab: Sequence[str], n_rows: int) -> Any:
    """The code-frequency baseline: every example scores each code by its share of training next visits."""
    import numpy as np

    counts = Counter(c for items in train_sets for c in set(items))
    total = max(1, sum(counts.values()))
    row = np.asarray([counts.get(c, 0) / total for c in vocab], dtype=float)
    return np.tile(row, (n_rows, 1))


def mlm_metrics(logits: Any, labels: Any, ignore_index: int = -100) -> dict[str, Any]:
    """Masked-token accuracy and perplexity (exp of the mean cross-entropy) over positions != ignore_index."""
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss

    z = np.asarray(logits, dtype=float)
    lab = np.asarray(labels).ravel()
    z = z.reshape(lab.size, -1)
    keep = lab != ignore_index
    if not keep.any():
        return {"masked": 0, "mlm_accuracy": None, "mlm_loss": None, "perplexity": None,
                "note": f"no position has a label other than {ignore_index}"}
    z, lab = z[keep], lab[keep]
    z = z - z.max(axis=1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=1, keepdims=True)
    loss = float(log_loss(lab, prob, labels=list(range(z.shape[1]))))
    return {"masked": int(keep.sum()), "mlm_accuracy": float(accuracy_score(lab, prob.argmax(axis=1))),
            "mlm_loss": loss, "perplexity": perplexity(loss)}


def perplexity(mean_loss: float | None) -> float | None:
    """exp(mean token cross-entropy in nats); None for a missing or non-finite loss."""
    if mean_loss is None or not math.isfinite(mean_loss):
        return None
    return float(math.exp(min(mean_loss, 700.0)))


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)


def write_meds_predictions(path: str, rows: Iterable[Mapping[str, Any]], threshold: float = 0.5) -> int:
    """Write predictions as MEDS-evaluation parquet; returns the number of rows.

    Each row needs ``subject_id``, ``prediction_time`` (datetime or ISO string), ``boolean_value`` and
    ``predicted_boolean_probability``; ``predicted_boolean_value`` defaults to probability >= threshold.
    Column names come from ``meds.LabelSchema`` when the ``meds`` package is installed.
    """
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        from meds import LabelSchema

        sid, ptime, truth = LabelSchema.subject_id_name, LabelSchema.prediction_time_name, LabelSchema.boolean_value_name
    except ImportError:  # meds is optional: these are its names
        sid, ptime, truth = MEDS_PREDICTION_COLUMNS[:3]
    cols: dict[str, list[Any]] = {c: [] for c in (sid, ptime, truth, *MEDS_PREDICTION_COLUMNS[3:])}
    for row in rows:
        prob = float(row["predicted_boolean_probability"])
        cols[sid].append(int(row["subject_id"]))
        cols[ptime].append(_when(row["prediction_time"]))
        cols[truth].append(None if row.get("boolean_value") is None else bool(row["boolean_value"]))
        predicted = row.get("predicted_boolean_value")
        cols["predicted_boolean_value"].append(prob >= threshold if predicted is None else bool(predicted))
        cols["predicted_boolean_probability"].append(prob)
    schema = pa.schema([(sid, pa.int64()), (ptime, pa.timestamp("us")), (truth, pa.bool_()),
                        ("predicted_boolean_value", pa.bool_()), ("predicted_boolean_probability", pa.float32())])
    table = pa.table(cols, schema=schema)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    pq.write_table(table, path)
    return table.num_rows
