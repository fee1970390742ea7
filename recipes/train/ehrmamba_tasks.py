"""The EHRMamba tasks: causal-LM pretraining over patient timelines, and (prompted) binary fine-tuning.

    ehrdebug train recipes/configs/ehrmamba_pretrain_small.yaml out=runs/ehrmamba_pre
    ehrdebug train recipes/configs/ehrmamba_mortality_small.yaml init_from=runs/ehrmamba_pre out=runs/ehrmamba_mort

``ehrmamba_pretrain``: next-code prediction over CEHR timelines (visit and time tokens included). Batches are
right-padded and the labels are the ids with -100 on padding (``lm.mask_padding``; false reproduces seed
004's reproduction script, where padding is counted in the loss). Metrics on real next tokens only:
next-token accuracy and perplexity. ``ehrmamba_classify``: a 0/1 outcome (``label_field``) from the last
non-padding state, after the task token (``task_token``, ``[MOR]`` by default: EHRMamba's prompt); AUROC,
AUPRC, F1, Brier, bootstrap intervals and baselines as the BEHRT classifier. Before the first epoch both
log ``runtime.mamba_fast_path`` with the measured step time at the run's length (the loop calls
``start_findings``). Several prompted tasks in one model: ``ehrmamba_multitask`` (``ehrmamba_multitask.py``).
"""

from __future__ import annotations

from typing import Any

from recipes.train.behrt_common import BEHRT_DEFAULTS
from recipes.train.behrt_tasks import Classify
from recipes.train.cehr_common import CEHR_KEYS, CLASSIFY_KEYS, CehrTask
from recipes.train.schema import Key, PosInt

MAMBA_KEYS: dict[str, Key] = {
    **CEHR_KEYS,
    "model.backbone": Key(str | None, None, "mamba | mamba2 (null: mamba)"),
    "model.state_size": Key(PosInt | None, None, "SSM state size (null: the tier's 16)"),
    "model.pooling": Key(
        str | None, None, "classifier pooling: last_token (right) | last_position (pools padding: wrong)"
    ),
    "runtime_probe": Key(
        bool, True, "before the first epoch: time a few training steps and judge the Mamba path"
    ),
    "runtime_probe_steps": Key(PosInt, 1, "training steps the runtime probe times (after a short warm-up)"),
}
MAMBA_DEFAULTS: dict[str, Any] = {**BEHRT_DEFAULTS, "lora.target_modules": ["in_proj", "out_proj"]}


class MambaTask(CehrTask):
    FAMILY = "ehrmamba"
    ARCHITECTURE = "ehrmamba"
    ADD_CLS = False  # the state at the end of the timeline is the summary, not a [CLS] at its start

    def start_findings(
        self, model: Any, config: dict[str, Any], steps_per_epoch: int | None = None
    ) -> list[Any]:
        """``runtime.mamba_fast_path`` on the model about to train, at the run's length and batch size."""
        if not config["runtime_probe"]:
            return []
        from probes.runtime import mamba_fast_path

        return mamba_fast_path(model, time_it=True, seq_len=self.typical_length(config), batch_size=int(config["batch_size"]),
                               steps=int(config["runtime_probe_steps"]), steps_per_epoch=steps_per_epoch, forward=False)  # fmt: skip

    def typical_length(self, config: dict[str, Any]) -> int:
        """The 95th-percentile timeline length of the training split (prefix, visit and time tokens included),
        capped at ``max_length``: the width most batches are padded to."""
        from ehrdebug.models.cehr_inputs import insert_time_tokens

        prefix = self.prefix_length(config)
        lengths = sorted(len(insert_time_tokens(r)["codes"]) + prefix for r in self.records(config, "train"))
        if not lengths:
            return int(config["max_length"])
        return max(2, min(int(config["max_length"]), lengths[int(0.95 * (len(lengths) - 1))]))

    def prefix_length(self, config: dict[str, Any]) -> int:
        """Tokens before the timeline: the task token (when the config names one) and ``[CLS]`` (never, here)."""
        return int(bool(config.get("task_token"))) + int(self.ADD_CLS)

    def modules_to_save(self, model: Any) -> list[str]:
        return ["embeddings", *self.HEAD_MODULES]


class CausalTimeline(MambaTask):
    NAME, TASK, HEAD = "ehrmamba_pretrain", "causal_lm", "causal_lm"
    keys = {
        **MAMBA_KEYS,
        "lm.mask_padding": Key(
            bool, True, "labels -100 on padding (false: padding counted in the loss, seed 004's bug)"
        ),
    }
    defaults = {**MAMBA_DEFAULTS, "early_stopping.metric": "eval_loss"}

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        from ehrdebug.models.cehr_inputs import causal_lm_labels

        mask_padding = bool(config["lm"]["mask_padding"])

        def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
            batch = self.batch(features)
            ids = batch["input_ids"]
            batch["labels"] = causal_lm_labels(ids, batch["attention_mask"]) if mask_padding else ids.clone()
            return batch

        return collate

    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        """Next-token accuracy and perplexity over real tokens (padding never counts here, whatever the labels)."""
        import math

        import torch

        features = self.features(records, tokenizer, config)
        total = correct = 0
        nll = 0.0
        samples: list[dict[str, Any]] = []
        model.eval()
        with torch.no_grad():
            for i in range(0, len(features), int(config["eval_batch_size"])):
                batch = {
                    k: v.to(device)
                    for k, v in self.batch(features[i : i + int(config["eval_batch_size"])]).items()
                }
                logits = model(**batch).logits[:, :-1].float()
                gold = batch["input_ids"][:, 1:]
                real = batch["attention_mask"][:, 1:].bool()
                nll += float(torch.nn.functional.cross_entropy(logits[real], gold[real], reduction="sum"))
                correct += int((logits.argmax(-1)[real] == gold[real]).sum())
                total += int(real.sum())
                if len(samples) < int(config["num_log_samples"]):
                    n = int(real[0].sum())
                    samples.append({"prompt": " ".join(tokenizer.convert_ids_to_tokens(batch["input_ids"][0, : n + 1].tolist())),
                                    "output": " ".join(tokenizer.convert_ids_to_tokens(logits[0, :n].argmax(-1).tolist())),
                                    "expected": " ".join(tokenizer.convert_ids_to_tokens(gold[0, :n].tolist()))})  # fmt: skip
        if not total:
            return {}, samples
        return {f"{prefix}_next_token_accuracy": correct / total, f"{prefix}_perplexity": math.exp(nll / total),
                f"{prefix}_tokens": float(total)}, samples  # fmt: skip


class MambaClassify(MambaTask, Classify):
    NAME, TASK, HEAD = "ehrmamba_classify", "classification", "classification"
    HEAD_MODULES = ("classifier",)
    keys = {**MAMBA_KEYS, **{k: Classify.keys[k] for k in CLASSIFY_KEYS}}
    defaults = {**MAMBA_DEFAULTS, "early_stopping.metric": "eval_auroc", "task_token": "[MOR]"}


PRETRAIN = CausalTimeline()
CLASSIFY = MambaClassify()
