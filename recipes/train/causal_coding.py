"""Causal-LM coding of clinical notes (seed 003): a LLaMA-family base answers a note with its SNOMED-CT id(s).

    ehrdebug train recipes/configs/llama_coding_lora_small.yaml [key=value ...]

Instruction formatting (an Alpaca-style ``alpaca_template`` or the tokenizer's chat template), the prompt
masked out of the loss by default (``mask_prompt``), EOS kept in it, LoRA through peft (``lora.*``) and
QLoRA through bitsandbytes on CUDA (``quantization.load_in_4bit``: NF4, double quantisation, bf16
compute, ``prepare_model_for_kbit_training``, paged AdamW). New tokens (the code delimiters ``<code>``,
``</code>``) start at the mean of the pretrained rows and train under LoRA as trainable token rows
(``new_token_training``). At the start the run logs seed 003's coverage arithmetic (``data.coverage``) from
its own config and data; every evaluation generates, parses the answers in the configured format and logs
strict accuracy, code F1 and format validity next to the loss, plus ``metrics.loss_vs_accuracy``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from ehrdebug.errors import UserError
from recipes.train.causal_data import ALPACA
from recipes.train.schema import Key, NonNegInt, PosFloat, PosInt, UnitInterval
from recipes.train.task import Datasets, Task

NAME = "llama_coding"
ARCHITECTURE = "llama"
TASK = "coding"

KEYS: dict[str, Key] = {
    "data.task": Key(
        str, "coding", "ehrdebug.data.sample.load_task(task, split): instruction/input/output records"
    ),
    "template": Key(
        Literal["alpaca", "chat"], "alpaca", "alpaca: alpaca_template; chat: the tokenizer's chat template"
    ),
    "alpaca_template": Key(str, ALPACA, "prompt with {instruction} and {input}"),
    "system_prompt": Key(str, "", "chat template: system message (empty = none)"),
    "default_instruction": Key(
        str, "Answer with the SNOMED-CT concept id of the primary diagnosis.", "when a record has none"
    ),
    "response_template": Key(
        str,
        "{answer}",
        "the trained response; {answer} = the codes in output.format, {label} = the record's label",
    ),
    "mask_prompt": Key(
        bool, True, "prompt tokens carry no loss (-100); false: every prompt token is trained on"
    ),
    "add_eos": Key(bool, True, "end each response with EOS (kept in the loss so the model learns to stop)"),
    "new_tokens": Key(list[str], ["<code>", "</code>"], "tokens added to the tokenizer (code delimiters)"),
    "add_code_tokens": Key(NonNegInt, 0, "register the top-N codes of the training answers as whole tokens"),
    "new_token_init": Key(Literal["random", "mean", "description"], "mean", "where new embedding rows start"),
    "new_token_training": Key(
        Literal["trainable_tokens", "modules_to_save", "frozen"],
        "trainable_tokens",
        "LoRA: how new rows train (peft trainable_token_indices, full embeddings/lm_head, or not at all)",
    ),
    "output.format": Key(Literal["single", "list"], "single", "one code per answer, or a separated list"),
    "output.separator": Key(str, ", ", "between codes of a list"),
    "output.open": Key(str | None, "<code>", "before the answer (null = none)"),
    "output.close": Key(str | None, "</code>", "after the answer (null = none)"),
    "max_length": Key(PosInt, 256, "prompt + response tokens kept (the prompt is cut from its start)"),
    "drop_last": Key(bool, False, "drop each epoch's last incomplete batch (dataloader_drop_last)"),
    "num_eval_generations": Key(PosInt, 32, "validation records generated at each evaluation"),
    "num_log_samples": Key(NonNegInt, 4, "of which logged as samples"),
    "num_test_generations": Key(PosInt | None, None, "test records generated at the end (null = all)"),
    "generation.do_sample": Key(bool, False, "sample instead of greedy/beam search"),
    "generation.temperature": Key(PosFloat, 1.0, "sampling temperature"),
    "generation.top_k": Key(NonNegInt, 50, "top-k sampling (0 = off)"),
    "generation.top_p": Key(UnitInterval, 1.0, "nucleus sampling"),
    "generation.num_beams": Key(PosInt, 1, "beam search width"),
    "generation.repetition_penalty": Key(PosFloat, 1.0, "repetition penalty"),
    "generation.max_new_tokens": Key(PosInt, 24, "generated tokens at most"),
    "quantization.load_in_4bit": Key(bool, False, "QLoRA: 4-bit base through bitsandbytes (CUDA only)"),
    "quantization.quant_type": Key(Literal["nf4", "fp4"], "nf4", "4-bit quantisation type"),
    "quantization.double_quant": Key(bool, True, "quantise the quantisation constants too"),
    "quantization.compute_dtype": Key(
        Literal["bfloat16", "float16", "float32"], "bfloat16", "dtype of the 4-bit matmuls"
    ),
    "optimizer": Key(
        Literal["adamw", "paged_adamw_32bit", "paged_adamw_8bit"],
        "adamw",
        "paged AdamW needs bitsandbytes (CUDA)",
    ),
    "gradient_checkpointing": Key(bool, False, "recompute activations in backward (large bases)"),
}


def check_quantization(config: dict[str, Any]) -> None:
    """QLoRA and paged optimizers need CUDA and bitsandbytes: say so in one line instead of failing deep inside."""
    import importlib.util

    import torch

    wants = [what for what, on in (("QLoRA (quantization.load_in_4bit: true)", config["quantization"]["load_in_4bit"]),
                                   (f"optimizer: {config['optimizer']}", config["optimizer"] != "adamw")) if on]  # fmt: skip
    if not wants:
        return
    if not torch.cuda.is_available() or config["device"] == "cpu":
        raise UserError(f"{' and '.join(wants)} needs a CUDA GPU with bitsandbytes and this machine has no CUDA GPU; "
                        "use recipes/configs/llama_coding_lora_small.yaml or set quantization.load_in_4bit=false "
                        "optimizer=adamw (plain LoRA)")  # fmt: skip
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(f"{' and '.join(wants)} needs bitsandbytes, which is not installed: pip install 'ehrdebug[cuda]' "
                        "(or set quantization.load_in_4bit=false optimizer=adamw for plain LoRA)")  # fmt: skip
    if not config["use_lora"] and config["quantization"]["load_in_4bit"]:
        raise UserError("quantization.load_in_4bit=true trains only adapters: set use_lora=true")


def load_causal_base(config: dict[str, Any]) -> tuple[Any, Any]:
    """(tokenizer, model) from a local dir or a hub id: fp32, or 4-bit NF4 prepared for k-bit training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = os.path.expanduser(str(config["base"]))
    if base.startswith((".", "/", "~")) and not os.path.isdir(base):
        raise UserError(f"base model directory not found: {config['base']} (a local dir or a hub id)")
    kwargs: dict[str, Any] = {"dtype": torch.float32}
    q = config["quantization"]
    if q["load_in_4bit"]:
        from transformers import BitsAndBytesConfig

        compute = getattr(torch, q["compute_dtype"])
        kwargs = {"dtype": compute, "device_map": {"": int(os.environ.get("LOCAL_RANK", 0))},
                  "quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q["quant_type"],
                                                            bnb_4bit_use_double_quant=q["double_quant"],
                                                            bnb_4bit_compute_dtype=compute)}  # fmt: skip
    try:
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load base {config['base']!r}: {str(exc).strip().splitlines()[0]}") from exc
    return tokenizer, model


def _embedding_names(model: Any) -> tuple[str, str | None, bool]:
    """(input embedding module name, lm_head name, tied) as peft names modules (the last path part)."""
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    names = {id(m): n.rsplit(".", 1)[-1] for n, m in model.named_modules()}
    tied = head is not None and head.weight.data_ptr() == emb.weight.data_ptr()
    return names[id(emb)], names.get(id(head)) if head is not None else None, tied


def top_codes(records: list[dict[str, Any]], n: int) -> list[str]:
    """The ``n`` most frequent codes of the training answers (ties by first appearance)."""
    from collections import Counter

    from recipes.train.causal_data import expected_codes

    counts = Counter(code for r in records for code in expected_codes(r)) if n else Counter()
    return [code for code, _ in counts.most_common(n)]


class CausalCoding(Task):
    """The task object the training layer looks up as ``llama_coding`` (recipes.train.task.TASKS)."""

    NAME, ARCHITECTURE, TASK = NAME, ARCHITECTURE, TASK
    keys = KEYS
    defaults = {
        "base": "sample_data/bases/causal", "use_lora": True, "lora.r": 16, "lora.alpha": 32, "lora.dropout": 0.05,
        "lora.target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "lr": 2e-3, "batch_size": 8,
        "early_stopping.metric": "eval_loss", "scheduler": "cosine", "warmup_steps": 20,
    }  # fmt: skip

    def __init__(self) -> None:
        self._new_ids: dict[int, list[int]] = {}  # id(model) -> ids of the added rows (for the LoRA options)

    # -- model ---------------------------------------------------------------------------------------
    def build(self, config: dict[str, Any], checkpoint: Path | None) -> tuple[Any, Any, dict[str, Any]]:
        from recipes.train import tokens
        from recipes.train.causal_data import pad_id

        check_quantization(config)
        tokenizer, model = load_causal_base(config)
        pad_id(tokenizer)
        codes = top_codes(self.records(config, "train"), int(config["add_code_tokens"]))
        info = tokens.add_tokens(
            model, tokenizer, list(config["new_tokens"]), codes, config["new_token_init"], seed=config["seed"]
        )
        self._new_ids[id(model)] = sorted((info.get("added_ids") or {}).values())
        self._mode = config["new_token_training"]
        model.config.pad_token_id = tokenizer.pad_token_id
        if config["quantization"]["load_in_4bit"]:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=config["gradient_checkpointing"]
            )
        elif config["gradient_checkpointing"]:
            model.gradient_checkpointing_enable()
        info["new_token_training"] = (
            config["new_token_training"] if config["use_lora"] else "full fine-tuning"
        )
        return model, tokenizer, info

    def modules_to_save(self, model: Any) -> list[str]:
        new = self._new_ids.get(id(model))
        if not new or self._mode != "modules_to_save":
            return []
        emb, head, tied = _embedding_names(model)
        return [emb] if tied or head is None else [emb, head]

    def lora_options(self, model: Any, config: dict[str, Any]) -> dict[str, Any]:
        """Extra ``LoraConfig`` arguments: the new rows as trainable tokens (tied lm_head follows them)."""
        new = self._new_ids.get(id(model))
        if not new or self._mode == "frozen":
            return {}
        emb, _, tied = _embedding_names(model)
        if self._mode == "trainable_tokens":
            return {"trainable_token_indices": {emb: list(new)}, "ensure_weight_tying": tied}
        return {"ensure_weight_tying": tied}

    _mode = "trainable_tokens"

    def make_optimizer(self, params: list[Any], config: dict[str, Any]) -> Any:
        """AdamW, or bitsandbytes' paged AdamW (QLoRA: optimizer state paged to CPU under memory spikes)."""
        import torch

        if config["optimizer"] == "adamw":
            return torch.optim.AdamW(
                params, lr=float(config["lr"]), weight_decay=float(config["weight_decay"])
            )
        import bitsandbytes as bnb

        cls = bnb.optim.PagedAdamW8bit if config["optimizer"] == "paged_adamw_8bit" else bnb.optim.PagedAdamW
        return cls(params, lr=float(config["lr"]), weight_decay=float(config["weight_decay"]))

    # -- data ----------------------------------------------------------------------------------------
    def records(self, config: dict[str, Any], split: str) -> list[dict[str, Any]]:
        from recipes.train.data import load_records

        return load_records(config, split)

    def datasets(self, config: dict[str, Any], tokenizer: Any) -> Datasets:
        from recipes.train.causal_data import encode

        train = [encode(tokenizer, r, config) for r in self.records(config, "train")]
        eval_records = self.records(config, config["data"]["eval_split"])
        return Datasets(
            train=train, eval=[encode(tokenizer, r, config) for r in eval_records], eval_records=eval_records
        )

    def collator(self, tokenizer: Any, model: Any, config: dict[str, Any], train: bool) -> Any:
        from recipes.train.causal_data import CausalCollator, pad_id

        return CausalCollator(pad_id(tokenizer))

    def data_files(self, config: dict[str, Any]) -> dict[str, Any]:
        from recipes.train.data import split_files

        return split_files(config)

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, model: Any, tokenizer: Any, records: list[dict[str, Any]], config: dict[str, Any], device: Any,
                 *args: Any, prefix: str = "eval") -> tuple[dict[str, float], list[dict[str, Any]]]:  # fmt: skip
        from recipes.train.causal_eval import evaluate

        return evaluate(model, tokenizer, records, config, device, prefix=prefix)

    def final_test(
        self, model: Any, tokenizer: Any, config: dict[str, Any], device: Any, run_dir: Path
    ) -> dict[str, Any]:
        """``test``: test_loss (response tokens) beside strict accuracy, code F1 and format validity."""
        from recipes.train.causal_data import encode
        from recipes.train.evaluation import eval_loss

        try:
            records = self.records(config, config["data"]["test_split"])
        except UserError:
            records = []
        if not records:
            return {}
        features = [encode(tokenizer, r, config) for r in records]
        loss = eval_loss(model, self, features, self.collator(tokenizer, model, config, False), device)
        metrics, samples = self.evaluate(model, tokenizer, records, config, device, prefix="test")
        return {"test": {"test_loss": loss, **metrics}, "test_samples": samples[:8]}

    def findings(
        self, config: dict[str, Any], data: Datasets, history: dict[str, Any], metrics: dict[str, Any] | None
    ) -> list[Any]:
        """At the start (``metrics`` None): seed 003's coverage arithmetic; at each evaluation: loss vs accuracy."""
        from recipes.train.causal_findings import coverage_findings, loss_accuracy_findings

        if metrics is None:
            return coverage_findings(config, len(data.train))
        return loss_accuracy_findings(history)

    def prompt_format(self, config: dict[str, Any], tokenizer: Any) -> dict[str, Any] | None:
        """The prompt as ``prompt_text`` writes it, with ``{instruction}``/``{input}`` slots, and the response
        as ``response_text`` writes it around the record's ``output`` (``{target}``: exact for one code, or a
        list already written with ``output.separator``)."""
        from recipes.train.causal_data import format_answer, prompt_text

        slots = {"instruction": "{instruction}", "input": "{input}"}
        if config["template"] == "chat":
            prompt = prompt_text(tokenizer, slots, config)
        else:
            prompt = config["alpaca_template"].format(**slots)
        output = config["output"]
        answer = format_answer(["{target}"], {**output, "format": "single"})
        response = config["response_template"].format(answer=answer, label="{label}")
        return {"prompt": prompt, "response": response, "instruction_field": "instruction", "input_field": "input",
                "target_field": "output", "label_field": "label",
                "default_instruction": str(config["default_instruction"])}  # fmt: skip

    def probe_config(self, config: dict[str, Any]) -> Any:
        from ehrdebug.config import EhrDebugConfig

        return EhrDebugConfig(text_field="input", target_field="output", max_length=config["max_length"],
                              max_target_length=int(config["generation"]["max_new_tokens"]))  # fmt: skip


TASK_OBJECT = CausalCoding()


def main(argv: list[str] | None = None) -> int:
    from recipes.train.loop import recipe_main

    return recipe_main(NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())
