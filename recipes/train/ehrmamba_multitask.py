"""EHRMamba multitask prompted fine-tuning (the paper's MPF): several binary tasks in one model.

    ehrdebug train recipes/configs/ehrmamba_pretrain_small.yaml out=runs/ehrmamba_pretrain_small
    ehrdebug train recipes/configs/ehrmamba_multitask_small.yaml out=runs/ehrmamba_multitask_small

The config lists the tasks (``tasks:``; name, task token, label source: ``ehrmamba_multitask_labels``). Each
record becomes one row per task it has a label for, that task's token first (``[MOR] [VS] codes… [VE] …``),
and the loop's shuffled batches mix the tasks. The model is ``EhrMambaForSequenceClassification`` with
``task_token_ids`` in task order: it reads each row's task from its first token, and ``task_heads: per_task``
gives one linear head per task (``shared``: one head, the token conditioning the state it reads).
Evaluation is per task: ``eval_auroc_<task>``, ``eval_auprc_<task>``… (F1 at each task's own F1-best cut),
their mean ``eval_auroc_mean`` (early stopping), and the unsuffixed ``eval_auroc``… of the first (primary)
task. The final test measures each task at the threshold chosen on validation: ``test_auroc_<task>``,
``test_auprc_<task>``, ``test_f1_<task>`` and the primary's ``test_auroc``/``test_auprc``/``test_f1``, with
bootstrap intervals, the bag-of-codes and prior baselines per task, per-record predictions per task
(``predictions-test-<task>``; the primary's also as ``predictions-test``, which the doctor reads) and MEDS
predictions when records carry ``prediction_time``. Fine-tuning starts from an ``ehrmamba_pretrain`` run
(``init_from``), fully or with LoRA (``use_lora``: embeddings, new task-token rows included, and the heads
train in full).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from recipes.train.behrt_tasks import Classify, _prefixed
from recipes.train.ehrmamba_multitask_labels import DEFAULT_TASKS, TaskList, TaskSpec, labelled, task_specs
from recipes.train.ehrmamba_tasks import MAMBA_DEFAULTS, MAMBA_KEYS, MambaTask
from recipes.train.schema import Key

METRICS = ("auroc", "auprc", "f1", "brier", "threshold", "prevalence")
Scored = tuple[
    TaskSpec, list[dict[str, Any]], list[int], Any
]  # spec, its labelled records, labels, probabilities


class MambaMultitask(MambaTask):
    NAME, TASK, HEAD = "ehrmamba_multitask", "classification", "classification"
    HEAD_MODULES = ("classifier",)
    keys = {
        **{k: v for k, v in MAMBA_KEYS.items() if k != "task_token"},
        "tasks": Key(
            TaskList,
            DEFAULT_TASKS,
            "binary tasks (name, token, source: field | next_visit_prefix, "
            "field or prefixes); the first is the primary one",
        ),
        "task_heads": Key(
            Literal["per_task", "shared"],
            "per_task",
            "one linear head per task, or one head that the task token conditions",
        ),
        "bootstrap": Classify.keys["bootstrap"],
        "baselines": Key(
            bool, True, "final test: bag-of-codes logistic regression and the prior per task, same split"
        ),
    }
    defaults = {**MAMBA_DEFAULTS, "early_stopping.metric": "eval_auroc_mean"}

    # -- model and tokenizer --------------------------------------------------------------------------
    def head_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"num_labels": 1, "task_heads": config["task_heads"]}

    def tokenizer(self, config: dict[str, Any], start: Path | None) -> Any:
        """The CEHR tokenizer (built, or the checkpoint's) with every task token the config names."""
        from ehrdebug.models.cehr_inputs import ensure_cehr_tokens

        return ensure_cehr_tokens(super().tokenizer(config, start), [s.token for s in task_specs(config)])

    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        """CEHR ``build`` with the task tokens' ids (task order) in the model config, so the heads follow them."""
        from ehrdebug.models import head_class
        from recipes.train.checkpoint import resolve_init

        specs = task_specs(config)
        start = resolve_init(config["init_from"]) if config["init_from"] else None
        tokenizer = self.tokenizer(config, checkpoint or start)
        head = {
            **self.head_config(config),
            "task_token_ids": tokenizer.convert_tokens_to_ids([s.token for s in specs]),
        }
        cls = head_class(self.FAMILY, self.HEAD)
        if start is not None:  # the pretrained body, new heads (new rows for task tokens it lacked)
            if config["model_dropout"] is not None:
                head.update(self.dropout_config(float(config["model_dropout"])))
            model = cls.from_pretrained(str(start), **head)
            if len(tokenizer) > model.config.vocab_size:
                model.resize_token_embeddings(len(tokenizer))
        else:
            model_config = self.model_config(config, tokenizer)
            model_config.task_token_ids = head["task_token_ids"]
            model = cls(model_config)
        info = {
            "vocab_size": len(tokenizer),
            "init_from": str(start) if start else None,
            "head": self.HEAD,
            "tier": config["size"],
            "tasks": {s.name: s.token for s in specs},
        }
        return model, tokenizer, info

    # -- records and rows -----------------------------------------------------------------------------
    def prefix_length(self, config: dict[str, Any]) -> int:
        return 1 + int(self.ADD_CLS)

    def usable(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
        specs = task_specs(config)
        return [r for r in records if r.get("codes") and any(s.label(r) is not None for s in specs)]

    def label_field(self, config: dict[str, Any]) -> str:
        """The primary task's record field (what the data probes and the doctor check), if it reads one."""
        return task_specs(config)[0].field or ""

    def features(
        self,
        records: list[dict[str, Any]],
        tokenizer: Any,
        config: dict[str, Any],
        only: TaskSpec | None = None,
    ) -> list[dict[str, Any]]:
        """One row per (record, task with a label for it): the task's token first, then the CEHR timeline.

        A record is encoded once; each task's row differs only in its first id (the task token)."""
        from ehrdebug.models.cehr_inputs import FLOAT_KEYS, INT_KEYS, encode_cehr

        specs = task_specs(config)
        chosen = [(i, s) for i, s in enumerate(specs) if only is None or s.name == only.name]
        ids = dict(
            zip(
                [s.name for s in specs],
                tokenizer.convert_tokens_to_ids([s.token for s in specs]),
                strict=True,
            )
        )
        visits, length = self.max_visits(config), int(config["max_length"])
        rows: list[dict[str, Any]] = []
        for record in records:
            labels = [(i, s, s.label(record)) for i, s in chosen]
            if all(y is None for _, _, y in labels):
                continue
            enc = encode_cehr(
                tokenizer, record, length, task_token=specs[0].token, add_cls=self.ADD_CLS, max_visits=visits
            )
            base = {k: enc[k] for k in (*INT_KEYS, *FLOAT_KEYS)}
            for index, spec, y in labels:
                if y is not None:
                    rows.append(
                        {
                            **base,
                            "input_ids": [ids[spec.name], *base["input_ids"][1:]],
                            "clamped": enc["clamped"],
                            "label": int(y),
                            "task": index,
                        }
                    )
        return rows

    # -- evaluation -----------------------------------------------------------------------------------
    def scored(
        self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any
    ) -> list[Scored]:
        """Per task: the records with its label, the labels and the model's probabilities (its token first)."""
        out: list[Scored] = []
        for spec in task_specs(config):
            kept, y = labelled(records, spec)
            feats = self.features(kept, tokenizer, config, only=spec)
            p = self.outputs(model, feats, config, device).view(-1).sigmoid().numpy() if feats else []
            out.append((spec, list(kept), y, p))
        return out

    def probabilities(
        self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any
    ) -> Any:
        """The primary task's probabilities on ``records`` (those with its label), as the single-task classifier."""
        return self.scored(model, tokenizer, records, config, device)[0][3]

    def evaluate(
        self,
        model: Any,
        tokenizer: Any,
        records: list[dict[str, Any]],
        config: dict[str, Any],
        device: Any,
        *args: Any,
        prefix: str = "eval",
        thresholds: dict[str, float] | None = None,
        scored: list[Scored] | None = None,
    ) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Each task's AUROC, AUPRC, F1 (at ``thresholds[task]``; else its F1-best cut), Brier as
        ``<prefix>_<metric>_<task>``, the primary's unsuffixed, and ``<prefix>_auroc_mean`` over the tasks."""
        from ehrdebug.metrics import binary_metrics, choose_threshold

        metrics: dict[str, float] = {}
        samples: list[dict[str, Any]] = []
        aurocs = []
        per_task = max(1, -(-int(config["num_log_samples"]) // len(task_specs(config))))
        for i, (spec, kept, y, p) in enumerate(
            scored or self.scored(model, tokenizer, records, config, device)
        ):
            if not kept:
                continue
            cut = thresholds[spec.name] if thresholds and spec.name in thresholds else choose_threshold(y, p)
            named = _prefixed(prefix, binary_metrics(y, p, threshold=cut), METRICS)
            metrics.update({f"{k}_{spec.name}": v for k, v in named.items()})
            if i == 0:
                metrics.update(named)
            if f"{prefix}_auroc" in named:
                aurocs.append(named[f"{prefix}_auroc"])
            samples += [
                {
                    "prompt": " ".join([spec.token, *r["codes"][-20:]]),
                    "output": f"{prob:.3f}",
                    "expected": label,
                }
                for r, prob, label in list(zip(kept, list(p), y, strict=True))[:per_task]
            ]
        if aurocs:
            metrics[f"{prefix}_auroc_mean"] = sum(aurocs) / len(aurocs)
        return metrics, samples[: int(config["num_log_samples"])]

    def final_test(
        self, model: Any, tokenizer: Any, config: dict[str, Any], device: Any, run_dir: Path
    ) -> dict[str, Any]:
        """Per task at its validation-chosen threshold: metrics, bootstrap intervals, baselines, predictions."""
        from ehrdebug.metrics import choose_threshold

        test = self.records(config, config["data"]["test_split"])
        if not test:
            return {}
        valid = self.records(config, config["data"]["eval_split"])
        cuts = {
            s.name: choose_threshold(y, p)
            for s, _, y, p in self.scored(model, tokenizer, valid, config, device)
            if y
        }
        scored = self.scored(model, tokenizer, test, config, device)
        metrics, samples = self.evaluate(
            model, tokenizer, test, config, device, prefix="test", thresholds=cuts, scored=scored
        )
        out: dict[str, Any] = {
            "test": metrics,
            "test_samples": samples[:8],
            "tasks": [s.model_dump() for s in task_specs(config)],
        }
        extras = [
            self._task_extras(spec, kept, y, p, cuts.get(spec.name, 0.5), config, run_dir, primary=i == 0)
            for i, (spec, kept, y, p) in enumerate(scored)
            if kept
        ]
        ci = {k: v for e in extras for k, v in e.get("test_ci", {}).items()}
        if ci:
            out["test_ci"] = ci
        if config["baselines"]:
            by_task = {e["name"]: e["baselines"] for e in extras if "baselines" in e}
            out["baselines_by_task"] = by_task
            primary = task_specs(config)[0].name
            if primary in by_task:
                out["baselines"] = by_task[primary]  # shaped as the single-task run's
        predictions = {e["name"]: e["predictions"] for e in extras if "predictions" in e}
        if predictions:
            out["predictions"] = predictions
        return out

    def _task_extras(
        self,
        spec: TaskSpec,
        kept: list[dict[str, Any]],
        y: list[int],
        p: Any,
        cut: float,
        config: dict[str, Any],
        run_dir: Path,
        primary: bool,
    ) -> dict[str, Any]:
        """One task's saved predictions, bootstrap intervals, baselines and MEDS predictions."""
        from ehrdebug.metrics import auprc, auroc, bootstrap_ci
        from ehrdebug.runstore.evidence import save_binary_predictions
        from recipes.train.baselines import classify_baselines

        ids = [r.get("patient_id") for r in kept]
        meta = {
            "threshold": cut,
            "label_field": spec.field or spec.name,
            "task": spec.name,
            "task_token": spec.token,
        }
        for split in [f"test-{spec.name}", *(["test"] if primary else [])]:
            save_binary_predictions(run_dir, split, y, p, ids=ids, **meta)
        out: dict[str, Any] = {"name": spec.name}
        if config["bootstrap"]:
            n, seed = int(config["bootstrap"]), int(config["seed"])
            ci = {
                f"test_{m}_{spec.name}": bootstrap_ci(fn, y, p, n=n, seed=seed)
                for m, fn in (("auroc", auroc), ("auprc", auprc))
            }
            out["test_ci"] = {
                **ci,
                **({k.removesuffix(f"_{spec.name}"): v for k, v in ci.items()} if primary else {}),
            }
        if config["baselines"]:
            splits = [
                labelled(self.records(config, s), spec) for s in ("train", config["data"]["eval_split"])
            ]
            train, valid = (
                [{"codes": r["codes"], "y": v} for r, v in zip(*pair, strict=True)] for pair in splits
            )
            out["baselines"] = classify_baselines(
                train, valid, [{"codes": r["codes"], "y": v} for r, v in zip(kept, y, strict=True)], "y"
            )
        if any(r.get("prediction_time") for r in kept):
            out["predictions"] = _write_meds(run_dir, spec, kept, y, p, cut)
        return out


def _write_meds(
    run_dir: Path, spec: TaskSpec, records: list[dict[str, Any]], y: list[int], probs: Any, cut: float
) -> str:
    """MEDS evaluation schema for one task under ``artifacts/predictions/test-<task>.parquet``."""
    from ehrdebug.metrics import write_meds_predictions

    path = run_dir / "artifacts" / "predictions" / f"test-{spec.name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "subject_id": r.get("subject_id", r.get("patient_id")),
            "prediction_time": r["prediction_time"],
            "boolean_value": int(label),
            "predicted_boolean_probability": float(prob),
        }
        for r, label, prob in zip(records, y, list(probs), strict=True)
        if r.get("prediction_time")
    ]
    write_meds_predictions(str(path), rows, threshold=cut)
    return str(path.relative_to(run_dir))


MULTITASK = MambaMultitask()
