"""Does the synthetic mortality outcome carry order/timing signal a bag of codes misses?

Fits three scikit-learn logistic regressions on the ``codes`` task (train+validation → test):
``bag`` (which codes occurred, age), ``bag+order`` (adds generic order/timing features: the codes of the
most recent stay, the gap between the last two stays, number of stays) and ``bag+rules`` (adds the
generator's own rule features, the ceiling). Reports test AUROC/AUPRC with bootstrap intervals and a
paired bootstrap p-value against ``bag``. Prints JSON.

    python benchmarks/synth_signal.py                      # the shipped sample (sample_data/ehr/codes)
    python benchmarks/synth_signal.py --patients 20000     # a larger fresh cohort, same generator
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

from ehrdebug import metrics
from ehrdebug.data.synth_outcome import history_features, record_stays


def features(r: dict[str, Any], kind: str) -> dict[str, float]:
    row: dict[str, float] = {f"code={c}": 1.0 for c in r["codes"]}
    row["age"] = r["ages"][-1] / 10
    if kind == "bag":
        return row
    stays = record_stays(r)
    row["stays"] = float(len(stays))
    row.update({f"last={c}": 1.0 for c in stays[-1][1]})
    if len(stays) > 1:
        gap = stays[-1][0] - stays[-2][0]
        row.update({"gap<=30": float(gap <= 30), "gap<=90": float(gap <= 90), "gap<=180": float(gap <= 180)})
    if kind == "bag+rules":
        row.update(history_features(stays))
    return row


def evaluate(train: list[dict[str, Any]], test: list[dict[str, Any]], n_boot: int = 1000) -> dict[str, Any]:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    y_train = [r["mortality"] for r in train]
    y_test = [r["mortality"] for r in test]
    scores: dict[str, Any] = {}
    out: dict[str, Any] = {"train": len(train), "test": len(test), "test_positives": sum(y_test),
                           "prevalence": round(sum(y_train + y_test) / len(train + test), 4)}
    for kind in ("bag", "bag+order", "bag+rules"):
        vec = DictVectorizer()
        model = LogisticRegression(C=0.3, max_iter=5000)
        model.fit(vec.fit_transform([features(r, kind) for r in train]), y_train)
        scores[kind] = model.predict_proba(vec.transform([features(r, kind) for r in test]))[:, 1]
        m = metrics.binary_metrics(y_test, scores[kind])
        ci = metrics.bootstrap_ci(metrics.auroc, y_test, scores[kind], n=n_boot, seed=0)
        out[kind] = {"auroc": round(m["auroc"], 4), "auprc": round(m["auprc"], 4),
                     "auroc_95ci": [round(ci["low"], 4), round(ci["high"], 4)]}
        if kind != "bag":
            test_ = metrics.paired_bootstrap(metrics.auroc, y_test, scores[kind], scores["bag"], n=n_boot, seed=0)
            out[kind]["delta_vs_bag"] = round(test_["delta"], 4)
            out[kind]["p_value_vs_bag"] = round(test_["p_value"], 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=0, help="generate a fresh cohort (0: the shipped sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.patients:
        from ehrdebug.data.build import codes_records, split_of
        from ehrdebug.data.mimic import load_mimic3
        from ehrdebug.data.synth import synthesize

        with tempfile.TemporaryDirectory() as tmp:
            synthesize(tmp, args.patients, args.seed)
            rows = codes_records(load_mimic3(tmp)[0])
        train = [r for r in rows if split_of(r["patient_id"]) != "test"]
        test = [r for r in rows if split_of(r["patient_id"]) == "test"]
        source = f"fresh cohort: {args.patients} patients, seed {args.seed}"
    else:
        from ehrdebug.data.sample import load_task

        train = load_task("codes", "train") + load_task("codes", "validation")
        test = load_task("codes", "test")
        source = "shipped sample_data/ehr/codes"
    print(json.dumps({"data": source, **evaluate(train, test, args.boot)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
