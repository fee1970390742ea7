"""The EHR code tokenizer on the shipped code records: vocabulary, saving/loading, BEHRT inputs, value bins."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ehrdebug import codetok
from ehrdebug.codetok import (
    CLS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    VISIT,
    VISIT_ID,
    build_code_tokenizer,
    encode_record,
    next_visit_labels,
    record_text,
    summarize,
)

SHIPPED = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


def _records(split: str = "train") -> list[dict]:
    return [
        json.loads(line) for line in (SHIPPED / f"{split}.jsonl").read_text().splitlines() if line.strip()
    ]


@pytest.fixture(scope="module")
def train():
    return _records("train")


@pytest.fixture(scope="module")
def tok(train):
    return build_code_tokenizer(train)


def test_vocabulary_is_the_specials_then_every_training_code_by_frequency(tok, train):
    counts = Counter(c for r in train for c in r["codes"])
    vocab = tok.get_vocab()
    assert [tok.convert_ids_to_tokens(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
    assert len(tok) == len(SPECIAL_TOKENS) + len(counts)
    assert tok.pad_token_id == PAD_ID and tok.unk_token_id == UNK_ID and tok.cls_token_id == CLS_ID
    assert tok.mask_token == "[MASK]" and tok.sep_token == "[SEP]" and VISIT in tok.all_special_tokens
    most = counts.most_common(1)[0][0]
    assert vocab[most] == len(SPECIAL_TOKENS)
    assert all(vocab[c] < vocab[d] for c, d in [(most, min(counts, key=counts.get))])


def test_min_frequency_sends_rare_codes_to_unk(train):
    counts = Counter(c for r in train for c in r["codes"])
    high = build_code_tokenizer(train, min_frequency=20)
    kept = {c for c, n in counts.items() if n >= 20}
    assert set(high.get_vocab()) - set(SPECIAL_TOKENS) == kept
    feats = [encode_record(high, r, 512) for r in train]
    rare = sum(n for c, n in counts.items() if n < 20)
    assert summarize(feats)["unknown_codes"] == rare
    assert sum(f["input_ids"].count(UNK_ID) for f in feats) == rare
    with pytest.raises(ValueError, match="min_frequency"):
        build_code_tokenizer(train, min_frequency=0)


def test_saved_tokenizer_reads_back_through_autotokenizer_and_ehrdebug(tmp_path, tok, train):
    from transformers import AutoTokenizer

    from ehrdebug.tokenizers import load_tokenizer

    tok.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = record_text(train[0])
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.get_vocab() == tok.get_vocab()
    handle = load_tokenizer(str(tmp_path))
    assert handle.family == "WordLevel" and handle.unk_token == "[UNK]"
    assert handle.vocab_size == len(tok)
    assert handle.backend.encode(text).ids == tok(text)["input_ids"]


def test_text_form_and_encode_record_agree(tok, train):
    record = train[0]
    feat = encode_record(tok, record, 512)
    assert tok(record_text(record))["input_ids"] == feat["input_ids"]


def test_behrt_conventions(tok):
    record = {
        "codes": ["401.9", "414.01", "428.0", "584.9", "401.9"],
        "ages": [60, 60, 61, 61, 62],
        "visits": [3, 3, 7, 7, 9],
        "days": [0, 0, 100, 100, 400],
    }
    feat = encode_record(tok, record, 64)
    vocab = tok.get_vocab()
    assert feat["input_ids"] == [
        CLS_ID,
        vocab["401.9"],
        vocab["414.01"],
        VISIT_ID,
        vocab["428.0"],
        vocab["584.9"],
        VISIT_ID,
        vocab["401.9"],
        VISIT_ID,
    ]
    assert feat["segment_ids"] == [0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert feat["position_ids"] == [0, 1, 1, 1, 2, 2, 2, 3, 3]  # visit index + 1, renumbered from 0
    assert feat["age_ids"] == [60, 60, 60, 60, 61, 61, 61, 62, 62]
    assert feat["special_tokens_mask"] == [1, 0, 0, 1, 0, 0, 1, 0, 1]
    assert feat["attention_mask"] == [1] * 9
    assert feat["clamped"] == {"age": 0, "position": 0, "time": 0, "value": 0} and feat["truncated"] == 0
    assert "time_ids" not in feat and "value_ids" not in feat
    timed = encode_record(tok, record, 64, max_time_ids=10, time_bucket_days=30)
    assert timed["time_ids"] == [0, 0, 0, 0, 3, 3, 3, 9, 9]
    assert timed["clamped"]["time"] == 1  # day 400 is bucket 13, forced into a table of 10


def test_long_records_keep_cls_and_the_most_recent_tokens(tok):
    record = {"codes": ["401.9"] * 30, "ages": list(range(30)), "visits": list(range(30)), "days": [0] * 30}
    feat = encode_record(tok, record, 11)
    assert len(feat["input_ids"]) == 11 and feat["input_ids"][0] == CLS_ID
    assert feat["truncated"] == 60 - 10
    assert feat["age_ids"][-1] == 29  # the newest visit survives
    assert feat["position_ids"][1:3] == [1, 1] and max(feat["position_ids"]) == 5


def test_ids_outside_the_tables_are_clamped_and_counted(tok):
    record = {"codes": ["401.9"] * 4, "ages": [-1, 50, 130, 200], "visits": [0, 1, 2, 3], "days": [0] * 4}
    feat = encode_record(tok, record, 64, max_age_ids=120, max_position_ids=3)
    assert feat["clamped"]["age"] == 3 and max(feat["age_ids"]) == 119 and min(feat["age_ids"]) == 0
    assert feat["clamped"]["position"] == 2  # the codes of visits 3 and 4 do not fit a table of 3
    assert max(feat["position_ids"]) == 2
    bucketed = encode_record(tok, record, 64, max_age_ids=30, age_bucket_years=5)
    assert bucketed["age_ids"][3] == 10 and bucketed["clamped"]["age"] == 2  # -1 and 200 (bucket 40 of 30)


def test_next_visit_targets_are_multi_hot_over_the_vocabulary(tok, train):
    record = train[0]
    target = next_visit_labels(tok, record["next_visit_codes"] + ["NOT-A-CODE"])
    vocab = tok.get_vocab()
    assert len(target) == len(tok)
    assert {i for i, v in enumerate(target) if v} == {
        vocab[c] for c in record["next_visit_codes"] if c in vocab
    }
    assert not any(target[: len(SPECIAL_TOKENS)])
    assert encode_record(tok, record, 64, next_visit=True)["next_visit_labels"] == next_visit_labels(
        tok, record["next_visit_codes"]
    )


def _lab_records() -> list[dict]:
    out = []
    for i in range(40):
        out.append(
            {
                "codes": ["LAB//K", "DX//A", "LAB//Na low"],
                "values": [3.0 + 0.05 * i, None, 130 + i % 4],
                "ages": [40] * 3,
                "visits": [0, 0, 0],
                "days": [0, 0, 0],
            }
        )
    return out


def test_numeric_values_become_code_bin_tokens(tmp_path):
    from transformers import AutoTokenizer

    records = _lab_records()
    tok = build_code_tokenizer(records, value_bins=4)
    vocab = tok.get_vocab()
    assert {"LAB//K//Q1", "LAB//K//Q4", "LAB//K", "DX//A", "LAB//Na_low//Q1"} <= set(vocab)
    assert codetok.num_value_bins(tok) == 4
    low = encode_record(tok, records[0], 16)
    high = encode_record(tok, records[-1], 16)
    assert tok.convert_ids_to_tokens(low["input_ids"][1:3]) == ["LAB//K//Q1", "DX//A"]
    assert tok.convert_ids_to_tokens(high["input_ids"][1:2]) == ["LAB//K//Q4"]
    assert low["value_ids"][:3] == [0, 1, 0] and high["value_ids"][1] == 4
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert encode_record(again, records[-1], 16) == high  # the cut points travel with the tokenizer
    assert record_text(records[-1], again).split()[0] == "LAB//K//Q4"


def test_rare_code_bin_falls_back_to_the_bare_code():
    records = _lab_records()
    tok = build_code_tokenizer(records, value_bins=4, min_frequency=11)  # 10 per K bin: all bins dropped
    vocab = tok.get_vocab()
    assert "LAB//K" in vocab and not any(t.startswith("LAB//K//Q") for t in vocab)
    feat = encode_record(tok, records[0], 16)
    assert feat["input_ids"][1] == vocab["LAB//K"] and feat["unknown"] == 0
