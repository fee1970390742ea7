"""data.prompt_loss on real batches of the coding recipe: masked prompts pass, unmasked ones report the
prompt's share of the loss-bearing tokens, and of the loss itself when a model is given."""

from __future__ import annotations

import pytest

from probes.prompt_loss import prompt_loss


@pytest.fixture(scope="module")
def parts():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from recipes.train.config import load_recipe_config
    from recipes.train.data import load_records
    from tests.adapter_fixtures import BASE

    tokenizer = AutoTokenizer.from_pretrained(BASE)
    model = AutoModelForCausalLM.from_pretrained(BASE)
    config = load_recipe_config(
        "recipes/configs/llama_coding_lora_small.yaml", ["add_code_tokens=0", "new_tokens=[]"]
    )
    return tokenizer, model, config, load_records(config, "validation")[:12]


def _batches(parts, mask_prompt: bool):
    from recipes.train.causal_data import CausalCollator, encode

    tokenizer, _, config, records = parts
    features = [encode(tokenizer, r, {**config, "mask_prompt": mask_prompt}) for r in records]
    collate = CausalCollator(tokenizer.pad_token_id)
    return [collate(features[i : i + 4]) for i in range(0, len(features), 4)], [
        f["prompt_length"] for f in features
    ]


def test_masked_prompt_is_ok(parts) -> None:
    batches, _ = _batches(parts, mask_prompt=True)
    found = prompt_loss(batches, parts[0])  # boundary from the "### Response:" marker in the tokens
    assert found[0].severity.name == "OK" and found[0].evidence["with_prompt_boundary"] == 12
    assert found[0].evidence["prompt_tokens_with_loss"] == 0


def test_unmasked_prompt_reports_its_share(parts) -> None:
    batches, lengths = _batches(parts, mask_prompt=False)
    by_marker = prompt_loss(batches, parts[0])[0]
    by_length = prompt_loss(batches, parts[0], prompt_lengths=lengths)[0]
    # the marker ends at "### Response:", the recipe's prompt one newline later: the same split but one token
    assert by_marker.evidence["prompt_token_share"] == pytest.approx(
        by_length.evidence["prompt_token_share"], abs=0.02
    )
    share = by_length.evidence["prompt_token_share"]
    assert share > 0.8 and by_length.severity.name == "FAIL" and by_length.recipes == ["mask-prompt-loss"]
    assert by_length.evidence["prompt_fully_in_loss"] == 12
    with_model = prompt_loss(batches, parts[0], parts[1], prompt_lengths=lengths)[0]
    loss_share = with_model.evidence["prompt_loss_share"]
    assert (
        0 < loss_share < 1
        and f"{loss_share:.0%}" in with_model.title
        and "per-token loss" in with_model.title
    )


def test_no_structure_is_said(parts) -> None:
    batches, _ = _batches(parts, mask_prompt=False)
    found = prompt_loss(batches, parts[0], response_marker="### Nowhere:")
    assert found[0].severity.name == "OK" and "no prompt/response structure" in found[0].title
