"""The catalogue of recipe ids a finding may point to.

Probes reference recipes by id only (they never import ``recipes``). ``fix`` ids are implemented by
``recipes/fixes`` and applied by ``ehrdebug fix``; ``advice`` ids are explained steps a person takes
(no automatic change is possible, e.g. installing CUDA kernels). A test checks every id used by a
probe is listed here and every ``fix`` id has an implementation.
"""

from __future__ import annotations

FIX: dict[str, str] = {
    "register-structural-tokens": "Add the dataset's structural tokens (<demo>, <v>, …) to the tokenizer as single tokens and resize the embeddings.",
    "init-new-embeddings-mean": "Initialise added token embeddings to the mean of the pretrained rows instead of random noise.",
    "init-new-embeddings-description": "Initialise each added token's embedding to the mean of the embeddings of its own text pieces.",
    "block-pretrained-eos": "End generation on the dataset's end token and block the pretrained EOS with bad_words_ids.",
    "early-stopping": "Stop at the validation best (early stopping with patience) and keep that checkpoint.",
    "lower-temperature": "Lower the sampling temperature (e.g. 1.3 → 1.0) once the model is confident.",
    "remove-string-columns": "Remove non-tensor (string) columns before the collator sees the dataset.",
    "mask-label-padding": "Replace pad ids in labels with -100 so padding carries no loss.",
    "add-task-prefix": "Prefix every T5 input with the task prefix, at training and at inference.",
    "anti-repetition-decoding": "Decode with repetition_penalty, no_repeat_ngram_size and beam search.",
    "warmup-new-embeddings": "Add learning-rate warmup so new embeddings settle before the full learning rate.",
    "lora-train-embeddings": "With LoRA and new tokens, make embeddings and lm_head trainable (modules_to_save).",
    "add-code-tokens": "Add the top-N most frequent codes as whole tokens.",
    "constrain-to-labels": "Decode only answers of the training split's label set (a token trie), spelled exactly.",
    "train-longer": "Train longer (lift the step cap or raise the epochs), or resume from the last checkpoint.",
    "lower-learning-rate": "Lower the learning rate, warm up, and clip gradients.",
    "mlm-ignore-index": "Mark MLM label positions without a target with -100 (the index the loss ignores), not -1 or the pad id.",
    "mlm-masking-rate": "Mask about 15% of the maskable codes (BERT/BEHRT), at the rate the config states.",
    "mlm-skip-special-tokens": "Never pick [CLS], [SEP], [PAD], [MASK] or visit separators as MLM targets (special-tokens mask).",
    "mlm-80-10-10": "Replace the picked MLM targets 80% with [MASK], 10% with a random code and leave 10% unchanged.",
    "grow-embedding-tables": "Size each embedding table (ages, visits, positions, bins, codes) to cover the largest id the data holds.",
    "drop-outcome-codes": "Remove the codes that record the outcome (e.g. a death code) from the model's input.",
    "increase-learning-rate": "Raise a learning rate too low to move the model, in tenfold steps up to the recipe's own default.",
    "cut-at-prediction-time": "Build each input from events at or before its prediction time only (MEDS label files give it).",
    "init-head-to-code-prior": "Start the next-visit head's bias at each code's training log-odds so the model learns the residual, not popularity.",
    # causal-LM coding (seed 003): recipes/fixes/causal.py
    "strict-output-format": "Train and post-process to the exact output format the metric checks (one code per answer, no extra text).",
    "check-drop-last": "Turn drop_last off (and review gradient accumulation) so every sample is used each epoch.",
    "mask-prompt-loss": "Mask the prompt out of the loss (labels -100 before the response) and keep EOS in it.",
    # sequence models (seed 004, EHRMamba): recipes/fixes/sequence_models.py
    "mask-padding-in-loss": "Give causal-LM labels -100 where attention_mask is 0 so padding predicting padding carries no loss.",
    "pool-last-real-token": "Pool the last non-padding token of each row in the classifier head, not the last position.",
}

ADVICE: dict[str, str] = {
    "install-cuda-kernels": "Install mamba-ssm and causal-conv1d (pip install 'ehrdebug[cuda]') so Mamba uses its fused CUDA kernels.",
    "report-auprc": "With few positives, report AUPRC (and F1 at a chosen threshold) beside AUROC.",
    "split-by-patient": "Split train/validation/test by patient so no patient appears in two splits.",
    "deduplicate-splits": "Remove examples duplicated across splits before evaluating.",
    "raise-learning-rate": "The loss did not move: raise the learning rate or check which parameters are trainable.",
    "fix-truncation": "Raise max_length or truncate from the left so the end token is kept.",
    "add-validation-set": "Add a validation set so overfitting and early stopping can be judged.",
    "use-fast-tokenizer": "Use a tokenizer that round-trips the data (normalisation changes the text).",
    "tie-or-resize-lm-head": "Resize/tie lm_head together with the input embeddings after adding tokens.",
    "weight-rare-codes": "Weight positives in the next-visit loss (pos_weight) or use a focal loss so rare codes are not drowned by frequent ones.",
    "lower-code-min-frequency": "Rebuild the code vocabulary (ehrdebug.codetok) on the training data with a lower min_frequency so the codes the model meets are not [UNK].",
}

ALL: dict[str, str] = {**FIX, **ADVICE}


def describe(recipe_id: str) -> str:
    return ALL.get(recipe_id, "")
