"""``constrain_to_labels``: T5 decoding restricted to the training split's diagnosis names (a token trie)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = ["Pneumonia", "Pulmonary embolism", "Gout", "Acute pancreatitis"]


def _base() -> tuple:
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.manual_seed(0)
    base = REPO / "sample_data" / "bases" / "t5"
    return AutoTokenizer.from_pretrained(base), AutoModelForSeq2SeqLM.from_pretrained(base, dtype=torch.float32)


def test_label_trie_walks_every_label_to_eos() -> None:
    from recipes.train.t5_diagnosis import label_trie

    tok, _ = _base()
    trie = label_trie(tok, LABELS)
    for label in LABELS:
        ids = tok(text_target=label)["input_ids"]
        assert ids[-1] == tok.eos_token_id
        for k in range(len(ids)):
            assert ids[k] in trie[tuple(ids[:k])]
    assert sorted(trie[()]) == sorted({tok(text_target=x)["input_ids"][0] for x in LABELS})


def test_constrained_generation_only_emits_training_labels() -> None:
    from recipes.train.config import load_recipe_config
    from recipes.train.t5_diagnosis import generate, normalize

    tok, model = _base()
    prompts = ["Symptoms: fever, cough, crackles. What is the most likely diagnosis?", "Sudden pleuritic chest pain."]
    free = load_recipe_config(REPO / "recipes/configs/t5_diagnosis_small.yaml", ["constrain_to_labels=false"])
    constrained = load_recipe_config(REPO / "recipes/configs/t5_diagnosis_small.yaml", ["constrain_to_labels=true"])
    unconstrained_out = generate(model, tok, prompts, free, "cpu")
    assert not all(o in LABELS for o in unconstrained_out)  # the untrained base writes docstring fragments
    out = generate(model, tok, prompts, constrained, "cpu", labels=LABELS)
    assert all(o in LABELS for o in out), out
    # default label set: the training split's diagnoses
    train = {normalize(x) for x in _train_labels(constrained)}
    assert all(normalize(o) in train for o in generate(model, tok, prompts, constrained, "cpu"))


def _train_labels(config: dict) -> list[str]:
    from recipes.train.data import load_records

    return [r["output"] for r in load_records(config, "train")]


def test_broken_config_keeps_free_decoding() -> None:
    from recipes.train.config import load_recipe_config

    broken = load_recipe_config(REPO / "recipes/configs/t5_diagnosis_small_broken.yaml")
    assert broken["constrain_to_labels"] is False
    assert broken["task_prefix"] == "" and broken["generation"]["num_beams"] == 1
