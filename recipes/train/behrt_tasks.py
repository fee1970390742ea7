"""The BEHRT tasks: masked-code pretraining, next-visit prediction and binary outcome classification.

    ehrdebug train recipes/configs/behrt_mlm_small.yaml out=runs/behrt_mlm
    ehrdebug train recipes/configs/behrt_mortality_small.yaml init_from=runs/behrt_mlm out=runs/behrt_mort

``behrt_mlm``: 15% of the code positions (never ``[CLS]``/``[VS]``/padding) become labels, -100 elsewhere;
of those 80% are replaced by ``[MASK]``, 10% by a random code and 10% left as they are. Metrics: masked-code
accuracy and perplexity (evaluation masks with a fixed seed, so evaluations compare).
``behrt_nextvisit``: which codes occur in the next visit (multi-label over the vocabulary): APS, micro
AUROC, recall@10/@20, beside the code-frequency baseline. ``behrt_classify``: mortality or any 0/1 label
(``label_field``): AUROC, AUPRC, F1 at the threshold chosen on validation, Brier, bootstrap 95% intervals;
the final test adds a bag-of-codes logistic regression and the prior on the same split, and writes MEDS
predictions when the records carry ``prediction_time``. Fine-tuning starts from an MLM run or checkpoint
(``init_from``), fully or with LoRA (``use_lora``: embeddings and head in ``modules_to_save``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipes.train.behrt_common import BEHRT_DEFAULTS, BEHRT_KEYS, BehrtTask
from recipes.train.schema import Key, NonNegInt, PosInt, Probability


def _prefixed(prefix: str, figures: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    return {f"{prefix}_{n}": float(figures[n]) for n in names if figures.get(n) is not None}


class MaskedCodes(BehrtTask):
    NAME, TASK, HEAD = "behrt_mlm", "mlm", "mlm"
    keys = {
        **BEHRT_KEYS,
        "mlm.probability": Key(Probability, 0.15, "share of code positions that become labels"),
        "mlm.mask_share": Key(Probability, 0.8, "of those, replaced by [MASK]"),
        "mlm.random_share": Key(Probability, 0.1, "of those, replaced by a random code (the rest stay)"),
        "mlm.ignore_index": Key(int, -100, "label of positions without a target (the loss ignores -100; BEHRT's original code wrote -1)"),
        "mlm.mask_special_tokens": Key(bool, False, "let [CLS]/[VS] be picked as targets (wrong; the zoo turns it on)"),
    }
    defaults = {**BEHRT_DEFAULTS, "early_stopping.metric": "eval_loss"}

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        """Masking at batch time (a fresh mask every epoch); evaluation masks from a fixed seed."""
        import torch

        from ehrdebug.models.batching import collate_codes, mask_codes, model_inputs

        mlm, vocab = config["mlm"], len(tokenizer)
        seed = int(config["seed"])

        def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
            generator = None if train else torch.Generator().manual_seed(seed + len(features[0]["input_ids"]))
            padded = collate_codes(features)
            if mlm["mask_special_tokens"]:
                padded["special_tokens_mask"] = torch.zeros_like(padded["special_tokens_mask"])
            batch = mask_codes(padded, vocab, float(mlm["probability"]), mask_share=float(mlm["mask_share"]),
                               random_share=float(mlm["random_share"]), generator=generator)  # fmt: skip
            if int(mlm["ignore_index"]) != -100:
                batch["labels"] = batch["labels"].masked_fill(batch["labels"] == -100, int(mlm["ignore_index"]))
            return model_inputs(batch)

        return collate

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        import torch

        from ehrdebug.metrics import mlm_metrics

        collate = self.collator(tokenizer, model, config, train=False)
        features = self.features(records, tokenizer, config)
        picked, labels, samples = [], [], []
        model.eval()
        with torch.no_grad():
            for i in range(0, len(features), int(config["eval_batch_size"])):
                batch = collate(features[i : i + int(config["eval_batch_size"])])
                gold = batch.pop("labels")
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
                keep = gold != -100
                picked.append(logits[keep])
                labels.append(gold[keep])
                if len(samples) < int(config["num_log_samples"]) and bool(keep.any()):
                    row = int(keep.any(dim=1).nonzero()[0])
                    where = keep[row].nonzero().flatten().tolist()
                    samples.append({"prompt": " ".join(tokenizer.convert_ids_to_tokens(batch["input_ids"][row].tolist())),
                                    "output": " ".join(tokenizer.convert_ids_to_tokens(logits[row, where].argmax(-1).tolist())),
                                    "expected": " ".join(tokenizer.convert_ids_to_tokens(gold[row, where].tolist()))})  # fmt: skip
        figures = mlm_metrics(torch.cat(picked).numpy(), torch.cat(labels).numpy()) if picked else {}
        return _prefixed(prefix, figures, ("mlm_accuracy", "perplexity", "mlm_loss", "masked")), samples


class NextVisit(BehrtTask):
    NAME, TASK, HEAD = "behrt_nextvisit", "next_visit", "next_visit"
    HEAD_MODULES = ("classifier", "pooler")  # the pooler is new too: an MLM checkpoint has none
    NEXT_VISIT = True
    keys = {
        **BEHRT_KEYS,
        "recall_k": Key(list[PosInt], [10, 20], "k of recall@k"),
        "next_visit.prior_bias": Key(bool, True, "start the head's bias at each code's log-odds in the training next "
                                     "visits (false: p=0.5 for every code, and the head collapses onto popularity)"),
    }
    defaults = {**BEHRT_DEFAULTS, "early_stopping.metric": "eval_aps"}

    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        """A fresh head starts at the code-frequency prior (its bias), so training learns the residual."""
        model, tokenizer, info = super().build(config, checkpoint)
        if checkpoint is None and config["next_visit"]["prior_bias"]:
            labels = [f["next_visit_labels"] for f in self.features(self.records(config, "train"), tokenizer, config)]
            info["head_bias"] = set_prior_bias(model.classifier, labels)
        return model, tokenizer, info

    def usable(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in records if r.get("codes") and r.get("next_visit_codes")]

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        from ehrdebug.codetok import code_token
        from ehrdebug.metrics import frequency_scores, multilabel_metrics

        scores = self.outputs(model, self.features(records, tokenizer, config), config, device).sigmoid().numpy()
        vocab = tokenizer.convert_ids_to_tokens(list(range(scores.shape[1])))
        truth = [[code_token(c) for c in r["next_visit_codes"]] for r in records]
        ks = tuple(int(k) for k in config["recall_k"])
        names = ("aps", "micro_auroc", *(f"recall_at_{k}" for k in ks))
        metrics = _prefixed(prefix, multilabel_metrics(truth, scores, k=ks, vocab=vocab), names)
        train_sets = [[code_token(c) for c in r["next_visit_codes"]] for r in self.records(config, "train")]
        baseline = multilabel_metrics(truth, frequency_scores(train_sets, vocab, len(records)), k=ks, vocab=vocab)
        metrics.update(_prefixed(f"{prefix}_frequency", baseline, names))
        samples = []
        for r, row in list(zip(records, scores, strict=True))[: int(config["num_log_samples"])]:
            top = [vocab[i] for i in row.argsort()[::-1][: ks[0]]]
            samples.append({"prompt": " ".join(r["codes"][-20:]), "output": " ".join(top), "expected": " ".join(r["next_visit_codes"])})
        return metrics, samples

    def final_test(self, model: Any, tokenizer: Any, config: dict[str, Any], device: Any, run_dir: Path) -> dict[str, Any]:
        """The base final test, and each test patient's top-ranked codes for the doctor (metrics.next_visit)."""
        from ehrdebug.codetok import SPECIAL_TOKENS, code_token
        from ehrdebug.runstore.evidence import save_next_visit_predictions

        out = super().final_test(model, tokenizer, config, device, run_dir)
        test = self.records(config, config["data"]["test_split"]) if out else []
        if test:
            scores = self.outputs(model, self.features(test, tokenizer, config), config, device).sigmoid().numpy()
            targets = [[[code_token(c) for c in r["next_visit_codes"]] for r in rs] for rs in (test, self.records(config, "train"))]
            save_next_visit_predictions(run_dir, "test", targets[0], scores, tokenizer.convert_ids_to_tokens(list(range(scores.shape[1]))),
                                        targets[1], ids=[r.get("patient_id") for r in test], ks=config["recall_k"], exclude=SPECIAL_TOKENS)  # fmt: skip
        return out


class Classify(BehrtTask):
    NAME, TASK, HEAD = "behrt_classify", "classification", "classification"
    HEAD_MODULES = ("classifier", "pooler")  # the pooler is new too: an MLM checkpoint has none
    keys = {
        **BEHRT_KEYS,
        "label_field": Key(str, "mortality", "the record's 0/1 outcome (mortality, or label for MEDS tasks)"),
        "bootstrap": Key(NonNegInt, 200, "bootstrap resamples for the test intervals (0 = none)"),
        "baselines": Key(bool, True, "final test: bag-of-codes logistic regression and the prior, same split"),
    }
    defaults = {**BEHRT_DEFAULTS, "early_stopping.metric": "eval_auroc"}

    def head_config(self, config: dict[str, Any]) -> dict[str, Any]:
        return {"num_labels": 1}

    def label_field(self, config: dict[str, Any]) -> str:
        return config["label_field"]

    def usable(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in records if r.get("codes") and r.get(config["label_field"]) in (0, 1, True, False)]

    def label_of(self, record: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        return {"label": int(record[config["label_field"]])}

    def probabilities(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any) -> Any:
        return self.outputs(model, self.features(records, tokenizer, config), config, device).view(-1).sigmoid().numpy()

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval", threshold: float | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        """AUROC, AUPRC, Brier and F1 at ``threshold`` (on validation: the F1-best cut of these very predictions)."""
        from ehrdebug.metrics import binary_metrics, choose_threshold

        y = [int(r[config["label_field"]]) for r in records]
        p = self.probabilities(model, tokenizer, records, config, device)
        cut = choose_threshold(y, p) if threshold is None else threshold
        figures = binary_metrics(y, p, threshold=cut)
        metrics = _prefixed(prefix, figures, ("auroc", "auprc", "f1", "brier", "threshold", "prevalence"))
        samples = [{"prompt": " ".join(r["codes"][-20:]), "output": f"{prob:.3f}", "expected": label}
                   for r, prob, label in list(zip(records, p.tolist(), y, strict=True))[: int(config["num_log_samples"])]]  # fmt: skip
        return metrics, samples

    def final_test(self, model: Any, tokenizer: Any, config: dict[str, Any], device: Any, run_dir: Path) -> dict[str, Any]:
        """Test figures at the validation-chosen threshold, bootstrap intervals, baselines, MEDS predictions."""
        from ehrdebug.metrics import auprc, auroc, bootstrap_ci, choose_threshold
        from ehrdebug.runstore.evidence import save_binary_predictions
        from recipes.train.baselines import classify_baselines

        valid = self.records(config, config["data"]["eval_split"])
        test = self.records(config, config["data"]["test_split"])
        if not test:
            return {}
        cut = choose_threshold([int(r[config["label_field"]]) for r in valid], self.probabilities(model, tokenizer, valid, config, device))
        metrics, samples = self.evaluate(model, tokenizer, test, config, device, prefix="test", threshold=cut)
        y = [int(r[config["label_field"]]) for r in test]
        p = self.probabilities(model, tokenizer, test, config, device)
        save_binary_predictions(run_dir, "test", y, p, ids=[r.get("patient_id") for r in test], threshold=cut, label_field=config["label_field"])
        out: dict[str, Any] = {"test": metrics, "test_samples": samples[:8]}
        if config["bootstrap"]:
            out["test_ci"] = {name: bootstrap_ci(fn, y, p, n=int(config["bootstrap"]), seed=int(config["seed"]))
                              for name, fn in (("test_auroc", auroc), ("test_auprc", auprc))}  # fmt: skip
        if config["baselines"]:
            out["baselines"] = classify_baselines(self.records(config, "train"), valid, test, config["label_field"])
        if any(r.get("prediction_time") for r in test):
            out["predictions"] = _write_predictions(run_dir, test, p, cut, config)
        return out


def _write_predictions(run_dir: Path, records: list[dict[str, Any]], probs: Any, cut: float, config: dict[str, Any]) -> str:
    """MEDS evaluation schema (subject_id, prediction_time, boolean_value, predicted_*) under artifacts/."""
    from ehrdebug.metrics import write_meds_predictions

    path = run_dir / "artifacts" / "predictions" / "test.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"subject_id": r.get("subject_id", r.get("patient_id")), "prediction_time": r["prediction_time"],
             "boolean_value": int(r[config["label_field"]]), "predicted_boolean_probability": float(prob)}
            for r, prob in zip(records, probs.tolist(), strict=True) if r.get("prediction_time")]  # fmt: skip
    write_meds_predictions(str(path), rows, threshold=cut)
    return str(path.relative_to(run_dir))


def set_prior_bias(head: Any, labels: list[list[float]], smoothing: float = 0.5) -> str:
    """Each output's bias := log-odds of its (smoothed) share of positive training targets.

    With a few hundred codes each positive in a few percent of next visits, a bias of 0 (p=0.5 everywhere) makes the
    first steps' gradients all about pushing every code down; they drive the encoder onto one output for
    every patient (popularity). Starting at the prior (RetinaNet's prior-probability init) avoids that.
    """
    import torch

    with torch.no_grad():
        targets = torch.tensor(labels, dtype=torch.float32)
        share = (targets.sum(0) + smoothing) / (targets.shape[0] + 2 * smoothing)
        head.bias.copy_(torch.log(share / (1 - share))[: head.bias.shape[0]].to(head.bias.dtype))
    return f"code-frequency log-odds of {targets.shape[0]} training next visits"


MLM = MaskedCodes()
NEXT_VISIT = NextVisit()
CLASSIFY = Classify()
