"""What the text seq2seq tasks (BART EHR generation, T5 diagnosis) share on the training layer.

A pretrained base plus added tokens (``recipes.train.tokens``), text pairs tokenized into
``input_ids``/``attention_mask``/``labels`` (``recipes.train.data``), ``DataCollatorForSeq2Seq`` and the
model's own loss. A subclass says how records become pairs and how generations are scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from recipes.train.schema import Fraction, Key, NonNegInt, PosFloat, PosInt, UnitInterval
from recipes.train.task import Datasets, Task

SEQ2SEQ_KEYS: dict[str, Key] = {
    "data.task": Key(str, "seq2seq", "ehrdebug.data.sample.load_task(task, split)"),
    "data.codes": Key(str | None, None, "code vocabulary (codes.txt); null = <root>/seq2seq/codes.txt"),
    "special_tokens": Key(list[str], ["<demo>", "<v>", "<\\v>", "<END>"], "structural tokens of the data"),
    "register_special_tokens": Key(bool, True, "add them to the tokenizer as single tokens"),
    "new_token_init": Key(Literal["random", "mean", "description"], "mean", "where new embedding rows start"),
    "add_code_tokens": Key(NonNegInt, 0, "register the top-N most frequent codes as whole tokens"),
    "max_length": Key(PosInt, 128, "encoder tokens kept"),
    "max_target_length": Key(PosInt, 128, "label tokens kept"),
    "label_pad": Key(Literal[-100, "pad"], -100, "-100: ignored by the loss; pad: the model learns to emit padding"),
    "pad_to_max_length": Key(bool, False, "pad every feature to max_length"),
    "drop_string_columns": Key(bool, True, "only tensors reach the collator"),
    "task_prefix": Key(str | None, "", "prepended to every training input (T5)"),
    "inference_prefix": Key(str | None, None, "prepended at generation; null = task_prefix"),
    "decoder_prompt": Key(bool, True, "BART: the decoder also writes the prompt"),
    "model_dropout": Key(Fraction | None, None, "replaces the base's dropout rate (null keeps it)"),
    "num_eval_generations": Key(PosInt, 32, "validation prompts generated at each evaluation"),
    "num_log_samples": Key(NonNegInt, 4, "of which logged as samples"),
    "num_test_generations": Key(PosInt | None, 64, "test records generated at the end (null = all)"),
    "generation.do_sample": Key(bool, False, "sample instead of greedy/beam search"),
    "generation.temperature": Key(PosFloat, 1.0, "sampling temperature"),
    "generation.top_k": Key(NonNegInt, 50, "top-k sampling (0 = off)"),
    "generation.top_p": Key(UnitInterval, 1.0, "nucleus sampling"),
    "generation.num_beams": Key(PosInt, 1, "beam search width"),
    "generation.repetition_penalty": Key(PosFloat, 1.0, "repetition penalty"),
    "generation.no_repeat_ngram_size": Key(NonNegInt, 0, "forbid repeated n-grams (0 = off)"),
    "generation.max_new_tokens": Key(PosInt, 64, "generated tokens at most"),
    "generation.eos": Key(str | None, None, "the dataset's end token (e.g. <END>); null keeps the model's EOS"),
    "generation.block_pretrained_eos": Key(bool, False, "bad_words_ids=[[pretrained eos]] so the model must end on eos"),
    "generation.bad_words": Key(list[str], [], "more strings never to generate"),
    "generation.early_stopping": Key(bool, False, "beam search: stop when num_beams candidates are finished"),
}


class Seq2SeqTask(Task):
    """A pretrained encoder-decoder with tokens added, trained on text pairs."""

    keys = SEQ2SEQ_KEYS

    # -- what a subclass provides ------------------------------------------------------------
    def pairs(self, records: list[dict[str, Any]], config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        raise NotImplementedError

    def label_targets(self, records: list[dict[str, Any]]) -> list[str]:
        raise NotImplementedError

    def token_info(self, tokenizer: Any, info: dict[str, Any]) -> dict[str, Any]:
        """Task-specific additions to the token report (run.json ``tokens``)."""
        return info

    # -- the task interface ------------------------------------------------------------------
    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        from recipes.train import tokens
        from recipes.train.data import load_records

        tokenizer, model = tokens.load_base(str(config["base"]), dropout=config.get("model_dropout"))
        train_targets = self.label_targets(load_records(config, "train"))
        special = list(config["special_tokens"]) if config["register_special_tokens"] else []
        n_codes = int(config["add_code_tokens"])
        codes = tokens.top_codes(train_targets, set(config["special_tokens"]), n_codes) if n_codes else []
        info = tokens.add_tokens(model, tokenizer, special, codes, config["new_token_init"], seed=config["seed"])
        return model, tokenizer, self.token_info(tokenizer, info)

    def records(self, config: dict[str, Any], split: str) -> list[dict[str, Any]]:
        from recipes.train.data import load_records

        return load_records(config, split)

    def datasets(self, config: dict[str, Any], tokenizer: Any) -> Datasets:
        from recipes.train import data as D

        train_records = self.records(config, "train")
        eval_records = self.records(config, config["data"]["eval_split"])
        train = D.make_features(D.training_pairs(self, train_records, config), tokenizer, config)
        evals = D.make_features(self.pairs(eval_records, config), tokenizer, {**config, "drop_string_columns": True})
        return Datasets(train=train, eval=evals, eval_records=eval_records)

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        from recipes.train.data import make_collator

        return make_collator(tokenizer, model, config)

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        return model(**batch).loss

    def data_files(self, config: dict[str, Any]) -> dict[str, Any]:
        from recipes.train.data import split_files

        return {**split_files(config), "codes": config["data"]["codes"]}

    def codes(self, config: dict[str, Any]) -> set[str] | None:
        """The code vocabulary generations are checked against (seq2seq data only)."""
        from recipes.train.data import code_vocabulary

        return code_vocabulary(config) if self.TASK == "seq2seq" else None

    def probe_inputs(self, config: dict[str, Any], model: Any, tokenizer: Any) -> dict[str, Any] | None:
        from recipes.train.generate import generation_kwargs

        return {"code_vocabulary": self.codes(config), "generation_kwargs": generation_kwargs(tokenizer, model, config)}

    def drop_phrases(self, text: str, rate: float, rng: Any) -> str:
        return text  # no augmentation unless the task defines it (recipes.train.data.training_pairs)
