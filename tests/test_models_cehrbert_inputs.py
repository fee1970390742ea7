"""CEHR inputs: time tokens between visits, visit start/end tokens, encoding, batching, last-token pooling index."""

from __future__ import annotations

import copy

import pytest

from ehrdebug.models.cehr_inputs import (
    CEHR_SPECIAL_TOKENS,
    TASK_TOKENS,
    TIME_TOKENS,
    TOKEN_TYPES,
    causal_lm_labels,
    cehr_tokenizer,
    collate_cehr,
    encode_cehr,
    gap_token,
    insert_time_tokens,
    last_token_index,
)

RECORD = {
    "patient_id": 7, "codes": ["A", "B", "C", "D", "E"], "ages": [50, 50, 50, 51, 53],
    "visits": [0, 0, 1, 1, 2], "days": [0, 0, 10, 10, 800], "values": [None, 1.5, None, None, 2.0], "mortality": 1,
}  # fmt: skip


@pytest.mark.parametrize(
    ("days", "token"),
    [
        (-3, "[W0]"),
        (0, "[W0]"),
        (6, "[W0]"),
        (7, "[W1]"),
        (27, "[W3]"),
        (28, "[M1]"),
        (59, "[M1]"),
        (60, "[M2]"),
        (364, "[M11]"),
        (365, "[LT]"),
        (5000, "[LT]"),
    ],  # fmt: skip
)
def test_gap_tokens(days, token):
    assert gap_token(days) == token


def test_time_and_visit_tokens_are_inserted_and_streams_stay_aligned():
    before = copy.deepcopy(RECORD)
    seq = insert_time_tokens(RECORD)
    assert RECORD == before  # pure
    assert seq["codes"] == [
        "[VS]",
        "A",
        "B",
        "[VE]",
        "[W1]",
        "[VS]",
        "C",
        "D",
        "[VE]",
        "[LT]",
        "[VS]",
        "E",
        "[VE]",
    ]
    n = len(seq["codes"])
    assert all(len(seq[k]) == n for k in ("ages", "visits", "days", "values", "token_types"))
    assert seq["token_types"][:5] == ["visit_start", "code", "code", "visit_end", "time"]
    lt = seq["codes"].index("[LT]")
    assert (
        seq["days"][lt] == 800 and seq["visits"][lt] == 2 and seq["ages"][lt] == 53
    )  # carries the next visit
    assert seq["values"][2] == 1.5 and seq["values"][0] is None and seq["values"][3] is None
    assert seq["mortality"] == 1 and seq["patient_id"] == 7
    only_time = insert_time_tokens(RECORD, visit_tokens=False)
    assert only_time["codes"] == ["A", "B", "[W1]", "C", "D", "[LT]", "E"]


def test_record_without_visits_is_one_visit_and_no_values_key_added():
    seq = insert_time_tokens({"codes": ["A", "B"], "days": [0, 900]})
    assert seq["codes"] == ["[VS]", "A", "B", "[VE]"] and "values" not in seq


def test_tokenizer_holds_every_cehr_token_as_one_id_and_round_trips(tmp_path):
    from transformers import AutoTokenizer

    tok = cehr_tokenizer([RECORD])
    for t in (*CEHR_SPECIAL_TOKENS, *TASK_TOKENS, "[VS]"):
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] != tok.unk_token_id, t
    tok.save_pretrained(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back.get_vocab() == tok.get_vocab()
    assert len(set(tok.convert_tokens_to_ids(list(TIME_TOKENS)))) == len(TIME_TOKENS)


def test_encode_layout_segments_visit_order_and_truncation():
    tok = cehr_tokenizer([RECORD])
    enc = encode_cehr(tok, RECORD, 64, task_token="[MOR]")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[:3] == ["[MOR]", "[CLS]", "[VS]"] and tokens[-1] == "[VE]"
    assert enc["token_type_ids"][:3] == [
        TOKEN_TYPES["task"],
        TOKEN_TYPES["class"],
        TOKEN_TYPES["visit_start"],
    ]
    assert enc["segment_ids"][:3] == [0, 0, 1] and enc["position_ids"][:3] == [0, 0, 1]
    c = tokens.index("C")
    assert enc["segment_ids"][c] == 2 and enc["position_ids"][c] == 2 and enc["time_values"][c] == 10.0
    assert (
        enc["special_tokens_mask"][tokens.index("A")] == 0
        and enc["special_tokens_mask"][tokens.index("[W1]")] == 1
    )
    assert enc["truncated"] == 0 and enc["unknown"] == 0
    short = encode_cehr(tok, RECORD, 5, task_token="[MOR]", max_visits=2)
    assert tok.convert_ids_to_tokens(short["input_ids"]) == ["[MOR]", "[CLS]", "[VS]", "E", "[VE]"]
    assert short["truncated"] == len(insert_time_tokens(RECORD)["codes"]) - 3
    assert short["position_ids"][2:] == [1, 1, 1]  # renumbered from the first visit kept
    clamped = encode_cehr(tok, RECORD, 64, max_visits=2)
    assert max(clamped["position_ids"]) == 1 and clamped["clamped"]["position"] > 0
    assert encode_cehr(tok, {"codes": ["nope"]}, 8)["unknown"] == 1
    with pytest.raises(ValueError, match="not in the tokenizer"):
        encode_cehr(cehr_tokenizer([RECORD], task_tokens=()), RECORD, 8, task_token="[MOR]")


def test_collate_right_pads_and_causal_labels_skip_padding():
    tok = cehr_tokenizer([RECORD])
    feats = [encode_cehr(tok, RECORD, 64), encode_cehr(tok, {"codes": ["A"], "days": [0]}, 64)]
    batch = collate_cehr(feats)
    n = len(feats[1]["input_ids"])
    assert batch["attention_mask"][1].tolist() == [1] * n + [0] * (batch["input_ids"].size(1) - n)
    assert (
        batch["input_ids"][1, n:].eq(tok.pad_token_id).all() and batch["time_values"].dtype.is_floating_point
    )
    labels = causal_lm_labels(batch["input_ids"], batch["attention_mask"])
    assert labels[1, n:].eq(-100).all() and labels[1, :n].tolist() == feats[1]["input_ids"]
    assert labels[0].ne(-100).all()


def test_last_token_index_right_left_and_no_padding():
    import torch

    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [2, 4, 4, 0]  # a full row pools its last token, not position 0
