"""The CEHR-BERT tasks (and BigBird, ``model.attention: bigbird``): masked-concept pretraining and classification.

    ehrdebug train recipes/configs/cehrbert_mlm_small.yaml out=runs/cehrbert_mlm
    ehrdebug train recipes/configs/cehrbert_mortality_small.yaml init_from=runs/cehrbert_mlm out=runs/cehrbert_mort
    ehrdebug train recipes/configs/bigbird_mortality_small.yaml out=runs/bigbird_mort

``cehrbert_mlm``: the BEHRT masking (15% of the concept positions, never [CLS], visit or time tokens or
padding; 80/10/10) over CEHR timelines; masked-concept accuracy and perplexity. ``cehrbert_classify``: a 0/1
outcome from the pooled [CLS]; the BEHRT classifier's metrics, intervals and baselines.
"""

from __future__ import annotations

from typing import Any, Literal

from recipes.train.behrt_common import BEHRT_DEFAULTS
from recipes.train.behrt_tasks import Classify, MaskedCodes
from recipes.train.cehr_common import CEHR_KEYS, CLASSIFY_KEYS, CehrTask
from recipes.train.schema import Key, PosInt

BERT_KEYS: dict[str, Key] = {
    **CEHR_KEYS,
    "model.attention": Key(
        Literal["full", "bigbird"] | None, None, "full (BERT) | bigbird (block-sparse, for long timelines)"
    ),
    "model.block_size": Key(PosInt | None, None, "BigBird block size (null: 16)"),
    "model.num_random_blocks": Key(PosInt | None, None, "BigBird random blocks per query block (null: 2)"),
    "model.num_attention_heads": Key(PosInt | None, None, "override the tier's heads"),
    "model.intermediate_size": Key(PosInt | None, None, "override the tier's feed-forward width"),
}
MLM_KEYS = (
    "mlm.probability",
    "mlm.mask_share",
    "mlm.random_share",
    "mlm.ignore_index",
    "mlm.mask_special_tokens",
)


class CehrBertTask(CehrTask):
    FAMILY = "cehrbert"
    ARCHITECTURE = "cehrbert"
    keys = BERT_KEYS
    defaults = BEHRT_DEFAULTS

    def dropout_config(self, p: float) -> dict[str, float]:
        return {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}


class CehrBertMaskedLM(CehrBertTask, MaskedCodes):
    NAME, TASK, HEAD = "cehrbert_mlm", "mlm", "mlm"
    keys = {**BERT_KEYS, **{k: MaskedCodes.keys[k] for k in MLM_KEYS}}
    defaults = {**BEHRT_DEFAULTS, "early_stopping.metric": "eval_loss"}

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        """CEHR batches masked at batch time (evaluation from a fixed seed): concept positions only."""
        import torch

        from ehrdebug.models.batching import mask_codes
        from ehrdebug.models.cehr_inputs import collate_cehr

        mlm, vocab, seed = config["mlm"], len(tokenizer), int(config["seed"])

        def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
            generator = None if train else torch.Generator().manual_seed(seed + len(features[0]["input_ids"]))
            padded = collate_cehr(features)
            if mlm["mask_special_tokens"]:
                padded["special_tokens_mask"] = torch.zeros_like(padded["special_tokens_mask"])
            batch = mask_codes(padded, vocab, float(mlm["probability"]), mask_share=float(mlm["mask_share"]),
                               random_share=float(mlm["random_share"]), generator=generator)  # fmt: skip
            if int(mlm["ignore_index"]) != -100:
                batch["labels"] = batch["labels"].masked_fill(
                    batch["labels"] == -100, int(mlm["ignore_index"])
                )
            batch.pop("special_tokens_mask")
            return batch

        return collate


class CehrBertClassify(CehrBertTask, Classify):
    NAME, TASK, HEAD = "cehrbert_classify", "classification", "classification"
    HEAD_MODULES = ("classifier",)
    keys = {**BERT_KEYS, **{k: Classify.keys[k] for k in CLASSIFY_KEYS}}
    defaults = {**BEHRT_DEFAULTS, "early_stopping.metric": "eval_auroc"}


MLM = CehrBertMaskedLM()
CLASSIFY = CehrBertClassify()
