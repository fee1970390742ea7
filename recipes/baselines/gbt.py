"""XGBoost on bag-of-codes counts with age at the first and the last visit (seed 004's baseline features).

    ehrdebug train recipes/configs/xgboost_mortality_small.yaml

Boosting rounds stop early when the validation log-loss has not improved for
``early_stopping.patience`` rounds; the model of the best round is kept, saved as XGBoost's own JSON
(``checkpoints/step-<best round>/model.json``, readable by ``xgboost.Booster().load_model``) with the
feature names beside it. The train and validation log-loss of every round are the run's loss curves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recipes.baselines import common
from recipes.baselines.data import ages_first_last, bag_of_codes, code_vocab, load_splits
from recipes.baselines.tasks import get_task
from recipes.train.schema import Key, NonNegFloat, PosFloat, PosInt, UnitInterval


class XGBoost:
    NAME = "xgboost"
    ARCHITECTURE = "xgboost"
    TASKS = ("mortality",)
    DEFAULTS: dict[str, Any] = {"out": "runs/xgboost_mortality_small"}  # of shared keys
    KEYS: dict[str, Key] = {
        "min_frequency": Key(PosInt, 1, "codes seen fewer times in training are dropped"),
        "model.n_estimators": Key(PosInt, 400, "boosting rounds at most"),
        "model.max_depth": Key(PosInt, 3, "depth of each tree"),
        "model.learning_rate": Key(PosFloat, 0.05, "shrinkage of each round"),
        "model.subsample": Key(UnitInterval, 0.9, "share of records each tree sees"),
        "model.colsample_bytree": Key(UnitInterval, 0.8, "share of features each tree sees"),
        "model.min_child_weight": Key(NonNegFloat, 1.0, "smallest hessian sum of a leaf"),
        "model.reg_lambda": Key(NonNegFloat, 1.0, "L2 regularisation of the leaf weights"),
        "model.scale_pos_weight": Key(PosFloat, 1.0, "weight of the positive class"),
        "early_stopping.patience": Key(
            PosInt, 40, "rounds without a better validation log-loss before stopping"
        ),
    }

    def planned_steps(self, config: dict[str, Any]) -> int:
        return int(config["model"]["n_estimators"])

    def size(self, config: dict[str, Any]) -> dict[str, Any]:
        """Tree nodes are counted after training (early stopping picks the rounds): here only their bound."""
        m = config["model"]
        bound = int(m["n_estimators"]) * (2 ** (int(m["max_depth"]) + 1) - 1)
        return {"parameters": None, "trainable_parameters": None,
                "note": f"tree nodes counted after training: at most {bound:,} ({m['n_estimators']} rounds of depth {m['max_depth']})"}  # fmt: skip

    def train(self, config: dict[str, Any], out_dir: str | Path | None = None) -> Path:
        import numpy as np
        import xgboost as xgb
        from scipy.sparse import csr_matrix, hstack

        task = get_task(config["task"])
        run_dir = Path(out_dir or config["out"])
        splits = load_splits(config, task.usable(config))
        vocab = code_vocab(splits.train, int(config["min_frequency"]))
        names = [f"code:{c}" for c in vocab] + ["age_first_visit", "age_last_visit"]

        def features(records: list[dict[str, Any]]) -> Any:
            return hstack(
                [bag_of_codes(records, vocab), csr_matrix(np.nan_to_num(ages_first_last(records), nan=0.0))]
            ).tocsr()

        x_train, x_valid, x_test = features(splits.train), features(splits.validation), features(splits.test)
        y_train, y_valid, y_test = (
            task.targets(s, config) for s in (splits.train, splits.validation, splits.test)
        )
        m = config["model"]
        model = xgb.XGBClassifier(
            n_estimators=int(m["n_estimators"]), max_depth=int(m["max_depth"]), learning_rate=float(m["learning_rate"]),
            subsample=float(m["subsample"]), colsample_bytree=float(m["colsample_bytree"]),
            min_child_weight=float(m["min_child_weight"]), reg_lambda=float(m["reg_lambda"]),
            scale_pos_weight=float(m["scale_pos_weight"]), early_stopping_rounds=int(config["early_stopping"]["patience"]),
            eval_metric=["logloss", "auc"], n_jobs=int(config["threads"]) or None, random_state=int(config["seed"]),
            tree_method="hist",
        )  # fmt: skip
        clock = common.Clock()
        with common.open_logger(config, run_dir, self.ARCHITECTURE, task, splits.files()) as log:
            with clock:
                model.fit(x_train, y_train, eval_set=[(x_train, y_train), (x_valid, y_valid)], verbose=False)
            curves = model.evals_result()
            rounds = len(curves["validation_0"]["logloss"])
            history: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
            for i in range(rounds):  # one boosting round = one step of the run's curves
                step = i + 1
                train = {
                    "step": step,
                    "loss": float(curves["validation_0"]["logloss"][i]),
                    "epoch": float(step),
                }
                evals = {"step": step, "eval_loss": float(curves["validation_1"]["logloss"][i]),
                         "eval_auroc": float(curves["validation_1"]["auc"][i])}  # fmt: skip
                log.log_train(step, loss=train["loss"], epoch=train["epoch"])
                log.log_eval(step, {k: v for k, v in evals.items() if k != "step"})
                history["train"].append(train)
                history["eval"].append(evals)
            best_round = int(model.best_iteration) + 1
            ckpt = run_dir / "checkpoints" / f"step-{best_round}"
            ckpt.mkdir(parents=True, exist_ok=True)
            model.get_booster().save_model(str(ckpt / "model.json"))
            (ckpt / "features.json").write_text(json.dumps({"features": names}) + "\n", encoding="utf-8")
            (ckpt / "trainer_state.json").write_text(json.dumps({"step": best_round, "best_step": best_round,
                                                                 "rounds": rounds}) + "\n", encoding="utf-8")  # fmt: skip
            log.log("checkpoint", best_round, path=f"checkpoints/step-{best_round}")
            p_valid = model.predict_proba(x_valid)[:, 1]  # the best round's trees (early stopping)
            p_test = model.predict_proba(x_test)[:, 1]
            nodes = sum(
                len(tree.strip().splitlines()) for tree in model.get_booster()[:best_round].get_dump()
            )  # one line a node
            summary: dict[str, Any] = {
                "recipe": self.NAME, "size": config["size"], "task": task.name, "steps": rounds, "epochs_done": rounds,
                "train_seconds": round(clock.seconds, 3), "best_step": best_round,
                "best_checkpoint": f"checkpoints/step-{best_round}", "early_stopping_metric": "eval_loss",
                "best_value": history["eval"][best_round - 1]["eval_loss"], "vocab_size": len(vocab),
                "parameters": common.parameter_info(nodes), "parameters_note": "tree nodes (splits and leaves) up to the best round",
                "best_eval": {**history["eval"][best_round - 1], **task.evaluate(y_valid, p_valid)},
            }  # fmt: skip
            summary.update(
                task.final_test(run_dir, config, (y_valid, p_valid), (splits.test, y_test, p_test))
            )
            common.finish_run(log, run_dir, summary, history)
        return run_dir


BASELINE = XGBoost()
