"""data.id_ranges on real BEHRT batches: ages beyond a too-small table (crash) or clamped onto its last row
(silent), read against the table sizes BehrtConfig declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.findings import Severity

CODES = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


@pytest.fixture(scope="module")
def data():
    from ehrdebug.codetok import build_code_tokenizer

    records = [json.loads(line) for line in (CODES / "train.jsonl").read_text().splitlines()]
    return build_code_tokenizer(records), records[:256]


def encoded(data, **kwargs):
    from ehrdebug.codetok import encode_record
    from ehrdebug.models.batching import collate_codes

    tokenizer, records = data
    features = [encode_record(tokenizer, r, 64, **kwargs) for r in records]
    return [collate_codes(features[i:i + 32]) for i in range(0, len(features), 32)]


def config(data, **overrides):
    from ehrdebug.models.behrt import BehrtConfig

    return BehrtConfig.tier("small", vocab_size=len(data[0]), **overrides)


def test_healthy_batches_fit_their_tables(data):
    from probes.id_ranges import probe_id_ranges

    findings = probe_id_ranges(encoded(data), model_config=config(data))
    assert [f.severity for f in findings] == [Severity.OK]
    inputs = findings[0].evidence["inputs"]
    assert {"input_ids", "age_ids", "segment_ids", "position_ids"} <= set(inputs)
    assert inputs["age_ids"]["max"] == max(max(r["ages"]) for r in data[1]) and inputs["age_ids"]["table_size"] == 120


def test_ages_beyond_the_table_fail_with_the_max_seen(data):
    from probes.id_ranges import probe_id_ranges

    findings = probe_id_ranges(encoded(data), model_config=config(data, age_vocab_size=40))
    fail = [f for f in findings if f.severity == Severity.FAIL]
    assert len(fail) == 1 and fail[0].evidence["input"] == "age_ids"
    assert fail[0].evidence["max"] == max(max(r["ages"]) for r in data[1]) >= 40
    assert fail[0].evidence["out_of_range"] > 0 and fail[0].examples
    assert "grow-embedding-tables" in fail[0].recipes
    # and the model itself would have refused the batch
    import torch

    from ehrdebug.models.batching import model_inputs
    from ehrdebug.models.behrt import BehrtModel

    batch = encoded(data)[0]
    with pytest.raises((ValueError, IndexError)):
        BehrtModel(config(data, age_vocab_size=40))(**{k: v for k, v in model_inputs(batch).items() if k != "labels"})
    assert torch.is_tensor(batch["age_ids"])


def test_ages_clamped_upstream_pile_up_on_the_last_row(data):
    from probes.id_ranges import probe_id_ranges

    findings = probe_id_ranges(encoded(data, max_age_ids=40), model_config=config(data, age_vocab_size=40))
    warn = [f for f in findings if f.severity == Severity.WARN]
    assert len(warn) == 1 and warn[0].evidence["input"] == "age_ids"
    assert warn[0].evidence["at_last_row"] > 100 and warn[0].evidence["pile_up_ratio"] >= 4
    assert not [f for f in findings if f.severity == Severity.FAIL]


def test_tables_from_a_declared_mapping_and_implicit_positions():
    from probes.id_ranges import declared_tables, probe_id_ranges, resolve_table_sizes

    class Config:
        vocab_size = 50
        max_age = 10
        max_position_embeddings = 8

    class Model:
        embedding_tables = {"input_ids": "vocab_size", "age_ids": "max_age"}
        config = Config()

    assert declared_tables(Model()) == Model.embedding_tables
    assert resolve_table_sizes(model=Model()) == resolve_table_sizes(Config(), mapping=Model.embedding_tables)
    assert resolve_table_sizes(model=Model()) == {"input_ids": 50, "age_ids": 10}
    batch = {"input_ids": [[1, 2, 3, 4]] * 3, "age_ids": [[3, 12, 12, 1]] * 3, "attention_mask": [[1, 1, 1, 1]] * 3}
    findings = probe_id_ranges(batch, model=Model())
    assert [f.evidence["input"] for f in findings if f.severity == Severity.FAIL] == ["age_ids"]
    long = {"input_ids": [list(range(12))]}
    findings = probe_id_ranges(long, model_config=Config(), mapping={"input_ids": "vocab_size", "position_ids": "max_position_embeddings"})
    assert [f.evidence["longest_sequence"] for f in findings if f.severity == Severity.FAIL] == [12]
    assert probe_id_ranges(batch)[0].severity == Severity.INFO  # no sizes known: says so, does not guess
    # a checkpoint's config.json read as a mapping, with the shared EHR embedding's stream names
    assert resolve_table_sizes({"vocab_size": 50, "age_vocab_size": 10, "model_type": "behrt"}) == {
        "input_ids": 50, "age_ids": 10}
