"""The two prediction tasks a baseline can train for, looked up by ``config["task"]``.

``mortality`` (any 0/1 field, ``label_field``): test AUROC, AUPRC, F1 at the threshold chosen on
validation, Brier, bootstrap 95% intervals, and ``artifacts/test_predictions.jsonl`` (subject id, label,
probability) that the benchmark's paired bootstrap and curves read. ``next_visit``: which codes occur in
the next visit (multi-label over the training next-visit vocabulary): APS, micro AUROC, recall@10/@20,
beside the code-frequency baseline. Metrics come from ``ehrdebug.metrics`` (scikit-learn).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from recipes.baselines.data import subject_id

PREDICTIONS = "test_predictions.jsonl"


class BinaryTask:
    """A 0/1 outcome per record."""

    name = "mortality"
    kind = "binary"
    eval_metric = "eval_auroc"

    def usable(self, config: dict[str, Any]) -> Any:
        field = config["label_field"]
        return lambda r: r.get(field) in (0, 1, True, False)

    def targets(
        self, records: list[dict[str, Any]], config: dict[str, Any], outputs: list[str] | None = None
    ) -> Any:
        import numpy as np

        return np.asarray([int(r[config["label_field"]]) for r in records], dtype=np.float32)

    def output_vocab(self, train: list[dict[str, Any]]) -> list[str]:
        return ["1"]

    def evaluate(
        self, y: Any, p: Any, prefix: str = "eval", threshold: float | None = None
    ) -> dict[str, float]:
        from ehrdebug.metrics import binary_metrics, choose_threshold

        cut = choose_threshold(y, p) if threshold is None else threshold
        figures = binary_metrics(y, p, threshold=cut)
        names = ("auroc", "auprc", "f1", "brier", "threshold", "prevalence")
        return {f"{prefix}_{n}": float(figures[n]) for n in names if figures.get(n) is not None}

    def final_test(self, run_dir: Path, config: dict[str, Any], valid: tuple[Any, Any], test: tuple[list[dict[str, Any]], Any, Any],
                   outputs: list[str] | None = None, train: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        """Test figures at the validation-chosen threshold, bootstrap intervals, saved predictions."""
        from ehrdebug.metrics import auprc, auroc, binary_metrics, bootstrap_ci, choose_threshold

        cut = choose_threshold(*valid)
        records, y, p = test
        metrics = self.evaluate(y, p, prefix="test", threshold=cut)
        out: dict[str, Any] = {"test": metrics}
        n = int(config["bootstrap"])
        if n:
            seed = int(config["seed"])

            def f1(yy: Any, pp: Any) -> float | None:
                return binary_metrics(yy, pp, threshold=cut)["f1"]

            out["test_ci"] = {name: bootstrap_ci(fn, y, p, n=n, seed=seed) for name, fn in
                              (("test_auroc", auroc), ("test_auprc", auprc), ("test_f1", f1))}  # fmt: skip
        write_predictions(run_dir, records, y, p, cut)
        out["predictions"] = f"artifacts/{PREDICTIONS}"
        return out


class NextVisitTask:
    """The codes of the next visit, multi-label over the codes seen in training next visits."""

    name = "next_visit"
    kind = "multilabel"
    eval_metric = "eval_aps"

    def usable(self, config: dict[str, Any]) -> Any:
        return lambda r: bool(r.get("next_visit_codes"))

    def output_vocab(self, train: list[dict[str, Any]]) -> list[str]:
        from collections import Counter

        counts = Counter(str(c) for r in train for c in set(r["next_visit_codes"]))
        return sorted(counts, key=lambda c: (-counts[c], c))

    def targets(
        self, records: list[dict[str, Any]], config: dict[str, Any], outputs: list[str] | None = None
    ) -> Any:
        import numpy as np

        index = {c: i for i, c in enumerate(outputs or [])}
        y = np.zeros((len(records), len(index)), dtype=np.float32)
        for row, record in enumerate(records):
            for code in record["next_visit_codes"]:
                if str(code) in index:
                    y[row, index[str(code)]] = 1.0
        return y

    def evaluate(self, y: Any, p: Any, prefix: str = "eval", threshold: float | None = None, truth: Any = None,
                 outputs: list[str] | None = None, k: tuple[int, ...] = (10, 20)) -> dict[str, float]:  # fmt: skip
        from ehrdebug.metrics import multilabel_metrics

        sets = truth if truth is not None else [[int(i) for i in row.nonzero()[0]] for row in y]
        figures = multilabel_metrics(sets, p, k=k, vocab=outputs if truth is not None else None)
        names = ("aps", "micro_auroc", *(f"recall_at_{top}" for top in k))
        return {f"{prefix}_{n}": float(figures[n]) for n in names if figures.get(n) is not None}

    def final_test(self, run_dir: Path, config: dict[str, Any], valid: tuple[Any, Any], test: tuple[list[dict[str, Any]], Any, Any],
                   outputs: list[str] | None = None, train: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        """Test APS / micro AUROC / recall@k against the true next-visit codes, and the frequency baseline."""
        from ehrdebug.metrics import frequency_scores

        records, _, p = test
        truth = [[str(c) for c in r["next_visit_codes"]] for r in records]
        metrics = self.evaluate(None, p, prefix="test", truth=truth, outputs=outputs)
        sets = [[str(c) for c in r["next_visit_codes"]] for r in train or []]
        freq = frequency_scores(sets, outputs or [], len(records))
        metrics.update(self.evaluate(None, freq, prefix="test_frequency", truth=truth, outputs=outputs))
        return {"test": metrics}


def write_predictions(run_dir: Path, records: list[dict[str, Any]], y: Any, p: Any, threshold: float) -> Path:
    """``artifacts/test_predictions.jsonl``: one line per test record (subject id, label, probability)."""
    path = Path(run_dir) / "artifacts" / PREDICTIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record, label, prob in zip(records, y.tolist(), p.tolist(), strict=True):
            row = {"subject_id": subject_id(record), "label": int(label), "probability": float(prob),
                   "predicted": int(prob >= threshold)}  # fmt: skip
            if record.get("prediction_time"):
                row["prediction_time"] = record["prediction_time"]
            fh.write(json.dumps(row) + "\n")
    return path


TASKS: dict[str, Any] = {"mortality": BinaryTask(), "next_visit": NextVisitTask()}


def get_task(name: str) -> Any:
    if name not in TASKS:
        raise UserError(f"unknown baseline task {name!r} (expected one of: {', '.join(TASKS)})")
    return TASKS[name]
