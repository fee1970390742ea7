"""The floor every model must clear: logistic regression on a bag of codes, and the class prior.

    ehrdebug train recipes/configs/logreg_mortality_small.yaml        # bag-of-codes logistic regression
    ehrdebug train recipes/configs/logreg_prior_mortality_small.yaml  # features: none -> the class prior

With ``features: none`` the model has only its intercept, which fits the log-odds of the training
prevalence: every record gets the prior probability (AUROC 0.5, AUPRC = prevalence). With
``features: bag_of_codes`` each code's presence (or count) is a feature, L2-regularised (``model.C``).
The F1 threshold is chosen on validation, as for every model of the benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from recipes.baselines import common
from recipes.baselines.data import bag_of_codes, code_vocab, load_splits
from recipes.baselines.tasks import get_task
from recipes.train.schema import Key, PosFloat, PosInt


class LogReg:
    NAME = "logreg"
    ARCHITECTURE = "logistic_regression"
    TASKS = ("mortality",)
    DEFAULTS: dict[str, Any] = {"out": "runs/logreg_mortality_small"}  # of shared keys
    KEYS: dict[str, Key] = {
        "features": Key(
            Literal["bag_of_codes", "none"], "bag_of_codes", "bag_of_codes, or none: the class prior"
        ),
        "binary": Key(bool, True, "code presence (true) or counts (false)"),
        "min_frequency": Key(PosInt, 1, "codes seen fewer times in training are dropped"),
        "model.C": Key(PosFloat, 1.0, "inverse L2 regularisation strength (scikit-learn's C)"),
        "model.max_iter": Key(PosInt, 2000, "solver iterations"),
    }

    def planned_steps(self, config: dict[str, Any]) -> int:
        return 1

    def size(self, config: dict[str, Any]) -> dict[str, Any]:
        """One weight per code of the training split plus the intercept (``ehrdebug bench --dry-run``)."""
        if config["features"] == "none":
            return {"parameters": 1, "trainable_parameters": 1}
        task = get_task(config["task"])
        n = len(code_vocab(load_splits(config, task.usable(config)).train, int(config["min_frequency"]))) + 1
        return {"parameters": n, "trainable_parameters": n}

    def train(self, config: dict[str, Any], out_dir: str | Path | None = None) -> Path:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        task = get_task(config["task"])
        run_dir = Path(out_dir or config["out"])
        splits = load_splits(config, task.usable(config))
        use_codes = config["features"] != "none"
        vocab = code_vocab(splits.train, int(config["min_frequency"])) if use_codes else []

        def features(records: list[dict[str, Any]]) -> Any:
            if not use_codes:
                return np.zeros(
                    (len(records), 1), dtype=np.float32
                )  # a constant column: the intercept alone learns
            return bag_of_codes(records, vocab, binary=bool(config["binary"]))

        y_train, y_valid = task.targets(splits.train, config), task.targets(splits.validation, config)
        clock = common.Clock()
        with common.open_logger(config, run_dir, self.ARCHITECTURE, task, splits.files()) as log:
            with clock:
                model = LogisticRegression(
                    C=float(config["model"]["C"]), max_iter=int(config["model"]["max_iter"])
                )
                model.fit(features(splits.train), y_train)
            p_train = model.predict_proba(features(splits.train))[:, 1]
            p_valid = model.predict_proba(features(splits.validation))[:, 1]
            train_loss = float(log_loss(y_train, p_train, labels=[0, 1]))
            eval_metrics = {
                "eval_loss": float(log_loss(y_valid, p_valid, labels=[0, 1])),
                **task.evaluate(y_valid, p_valid),
            }
            log.log_train(1, loss=train_loss, epoch=1.0)
            log.log_eval(1, eval_metrics)
            ckpt = run_dir / "checkpoints" / "step-1"
            ckpt.mkdir(parents=True, exist_ok=True)
            weights = {"intercept": float(model.intercept_[0]), "features": config["features"],
                       "coef": dict(zip(vocab, model.coef_[0].tolist(), strict=True)) if use_codes else {}}  # fmt: skip
            (ckpt / "model.json").write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
            (ckpt / "trainer_state.json").write_text(
                json.dumps({"step": 1, "best_step": 1}) + "\n", encoding="utf-8"
            )
            log.log("checkpoint", 1, path="checkpoints/step-1")
            y_test = task.targets(splits.test, config)
            p_test = model.predict_proba(features(splits.test))[:, 1]
            summary: dict[str, Any] = {
                "recipe": self.NAME, "size": config["size"], "task": task.name, "features": config["features"],
                "steps": 1, "epochs_done": 1, "train_seconds": round(clock.seconds, 3), "best_step": 1,
                "best_checkpoint": "checkpoints/step-1", "vocab_size": len(vocab),
                "parameters": common.parameter_info(len(vocab) + 1), "best_eval": {"step": 1, **eval_metrics},
            }  # fmt: skip
            summary.update(
                task.final_test(run_dir, config, (y_valid, p_valid), (splits.test, y_test, p_test))
            )
            history = {
                "train": [{"step": 1, "loss": train_loss, "epoch": 1.0}],
                "eval": [{"step": 1, **eval_metrics}],
            }
            common.finish_run(log, run_dir, summary, history)
        return run_dir


BASELINE = LogReg()
