"""The causal-LM coding recipe's parts: prompt masking and EOS, answer parsing and scores, the QLoRA line."""

from __future__ import annotations

import copy

import pytest

from ehrdebug.errors import UserError

RECORD = {
    "instruction": "Answer with the SNOMED-CT id.",
    "input": "Dyspnea and wheeze.",
    "output": "13645005",
    "label": "COPD",
}


def _config(*overrides: str) -> dict:
    from recipes.train.config import load_recipe_config

    return load_recipe_config("recipes/configs/llama_coding_lora_small.yaml", list(overrides))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from tests.adapter_fixtures import BASE

    tok = AutoTokenizer.from_pretrained(BASE)
    tok.add_tokens(["<code>", "</code>"], special_tokens=True)
    return tok


def test_prompt_is_masked_and_eos_is_trained(tokenizer) -> None:
    from recipes.train.causal_data import encode, response_text

    config = _config()
    feature = encode(tokenizer, RECORD, config)
    n = feature["prompt_length"]
    assert feature["labels"][:n] == [-100] * n
    assert feature["labels"][n:] == feature["input_ids"][n:]
    assert feature["labels"][-1] == tokenizer.eos_token_id  # EOS stays in the loss
    assert (
        tokenizer.decode(feature["input_ids"][n:-1]).strip()
        == response_text(RECORD, config)
        == "<code> 13645005</code>"
    )
    assert tokenizer.decode(feature["input_ids"][:n]).endswith("### Response:\n")
    unmasked = encode(tokenizer, RECORD, _config("mask_prompt=false"))
    assert unmasked["labels"] == unmasked["input_ids"]


def test_long_prompt_is_cut_from_its_start_keeping_the_response(tokenizer) -> None:
    from recipes.train.causal_data import encode

    feature = encode(tokenizer, {**RECORD, "input": "wheeze " * 400}, _config("max_length=64"))
    assert len(feature["input_ids"]) == 64 and feature["labels"][-1] == tokenizer.eos_token_id
    assert feature["input_ids"][0] == tokenizer.bos_token_id
    assert tokenizer.decode(feature["input_ids"][: feature["prompt_length"]]).endswith("### Response:\n")


def test_chat_template_without_one_is_a_user_error(tokenizer) -> None:
    from recipes.train.causal_data import prompt_text

    with pytest.raises(UserError, match="no chat template; use template: alpaca"):
        prompt_text(tokenizer, RECORD, _config("template=chat"))


def test_parse_formats() -> None:
    from recipes.train.causal_eval import parse_answer

    delimited = {"format": "single", "separator": ", ", "open": "<code>", "close": "</code>"}
    assert parse_answer("<code> 13645005</code>", delimited) == (True, ["13645005"])
    assert parse_answer("The code is <code> 13645005</code>.", delimited) == (False, ["13645005"])
    assert parse_answer("<code> 1364500542343007</code>", delimited) == (
        True,
        ["1364500542343007"],
    )  # parses, but wrong
    listed = {"format": "list", "separator": ", ", "open": None, "close": None}
    assert parse_answer("13645005, 42343007", listed) == (True, ["13645005", "42343007"])
    assert parse_answer("13645005 and 42343007", listed) == (False, ["13645005", "42343007"])
    assert parse_answer("13645005, heart", listed)[0] is False


def test_scores_strict_f1_and_validity() -> None:
    from recipes.train.causal_eval import score

    out = {"format": "list", "separator": ", ", "open": None, "close": None}
    s = score(["13645005", "Codes: 42343007", "1364500542343007", "22298006, 42343007"],
              [["13645005"], ["42343007"], ["13645005", "42343007"], ["22298006"]], out)  # fmt: skip
    assert (
        s["strict_accuracy"] == 0.25
    )  # only the first: the second has extra text, the third is concatenated
    assert s["format_validity"] == 0.75
    # extracted: {13645005} {42343007} {1364500542343007} {22298006, 42343007} vs 5 reference codes
    assert s["code_precision"] == pytest.approx(3 / 5) and s["code_recall"] == pytest.approx(3 / 5)


def test_qlora_without_cuda_stops_with_one_line(tmp_path) -> None:
    import torch

    from recipes.train import run_training

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the QLoRA config would train")
    config = _config("quantization.load_in_4bit=true", "optimizer=paged_adamw_32bit")
    with pytest.raises(UserError) as err:
        run_training(config, out_dir=tmp_path / "run")
    message = str(err.value)
    assert "\n" not in message and "needs a CUDA GPU with bitsandbytes" in message
    assert "llama_coding_lora_small.yaml" in message and "quantization.load_in_4bit=false" in message
    assert not (tmp_path / "run").exists()  # nothing written


def test_shipped_large_config_is_seed_003_setup() -> None:
    from recipes.train.config import load_recipe_config

    c = load_recipe_config("recipes/configs/llama_coding_qlora_large.yaml")
    assert c["quantization"] == {
        "load_in_4bit": True,
        "quant_type": "nf4",
        "double_quant": True,
        "compute_dtype": "bfloat16",
    }
    assert (c["batch_size"], c["grad_accum"], c["lr"], c["scheduler"], c["optimizer"]) == (
        2,
        4,
        2e-4,
        "cosine",
        "paged_adamw_32bit",
    )
    assert c["mask_prompt"] and not c["drop_last"]


def test_recorded_prompt_format_writes_the_runs_own_prompts(tokenizer) -> None:
    """What run.json's ``prompt_format`` lets the doctor write equals what the run writes (Alpaca and chat)."""
    from probes.doctor_run import formatted
    from recipes.train.causal_coding import TASK_OBJECT
    from recipes.train.causal_data import prompt_text, response_text

    # slots quoted inside a note stay text
    record = {**RECORD, "input": "Dyspnea; the note quotes {input} and {target}."}
    chat = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}<|assistant|>"
    for overrides in ((), ("template=chat", "system_prompt=Be brief.")):
        config = _config(*overrides)
        tok = tokenizer
        if overrides:
            tok = copy.deepcopy(tokenizer)
            tok.chat_template = chat
        got = formatted(TASK_OBJECT.prompt_format(config, tok), record, "input", "output")
        assert got["input"] == prompt_text(tok, record, config)
        assert got["output"] == response_text(record, config) == "<code> 13645005</code>"
    assert "### Instruction:" not in got["input"] and "<|system|>Be brief." in got["input"]
