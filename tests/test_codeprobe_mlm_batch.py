"""data.mlm_batch on real batches: the shipped codes records, the EHR code tokenizer and the BEHRT collator
(``collate_codes`` + ``mask_codes``), against collators broken the ways BEHRT ports break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.findings import Severity

CODES = Path(__file__).resolve().parents[1] / "sample_data" / "ehr" / "codes"


@pytest.fixture(scope="module")
def setup():
    from ehrdebug.codetok import build_code_tokenizer, encode_record

    records = [json.loads(line) for line in (CODES / "train.jsonl").read_text().splitlines()]
    tokenizer = build_code_tokenizer(records)
    features = [encode_record(tokenizer, r, 64) for r in records[:320]]
    return tokenizer, features


def batches(setup, probability=0.15, **mask_kwargs):
    import torch

    from ehrdebug.models.batching import collate_codes, mask_codes

    tokenizer, features = setup
    gen = torch.Generator().manual_seed(0)
    return [mask_codes(collate_codes(features[i:i + 32]), len(tokenizer), probability, generator=gen, **mask_kwargs)
            for i in range(0, len(features), 32)]


def bad(findings):
    return [f for f in findings if f.severity >= Severity.WARN]


def test_the_behrt_collator_passes_with_its_figures(setup):
    from probes.mlm_batch import probe_mlm_batch

    findings = probe_mlm_batch(batches(setup), setup[0], mlm_probability=0.15)
    assert not bad(findings), [f.title for f in findings]
    ok = [f for f in findings if f.severity == Severity.OK]
    assert ok and abs(ok[0].evidence["measured_rate"] - 0.15) < 0.02
    shares = ok[0].evidence["replacement"]
    assert abs(shares["mask"] - 0.8) < 0.05 and abs(shares["random"] - 0.1) < 0.04


@pytest.mark.parametrize("value", [-1, 0])
def test_ignore_index_other_than_minus_100_fails(setup, value):
    """BEHRT's original code marks 'no target' with -1; some ports use the pad id (0)."""
    from probes.mlm_batch import probe_mlm_batch

    broken = []
    for b in batches(setup):
        labels = b["labels"].clone()
        labels[labels == -100] = value
        broken.append({**b, "labels": labels})
    findings = probe_mlm_batch(broken, setup[0])
    hit = [f for f in findings if "mlm-ignore-index" in f.recipes]
    assert hit and hit[0].severity == Severity.FAIL
    assert hit[0].evidence["no_target_value"] == value and hit[0].evidence["no_target_share"] > 0.8
    # targets are still found correctly, so the rate stays right: only the ignore index is blamed
    assert not [f for f in findings if "mlm-masking-rate" in f.recipes]


def test_masking_rate_far_from_configured(setup):
    from probes.mlm_batch import probe_mlm_batch

    findings = probe_mlm_batch(batches(setup, probability=0.5), setup[0], mlm_probability=0.15)
    rate = [f for f in findings if "mlm-masking-rate" in f.recipes]
    assert rate and rate[0].severity == Severity.FAIL
    assert 0.45 < rate[0].evidence["measured_rate"] < 0.55
    # the config asking for 0.5 itself: the measured rate matches it, but is outside what BERT/BEHRT use
    findings = probe_mlm_batch(batches(setup, probability=0.5), setup[0], mlm_probability=0.5)
    rate = [f for f in findings if "mlm-masking-rate" in f.recipes]
    assert [f.severity for f in rate] == [Severity.WARN] and "outside" in rate[0].title


def test_special_tokens_and_padding_as_targets(setup):
    import torch

    from ehrdebug.models.batching import collate_codes, mask_codes
    from probes.mlm_batch import probe_mlm_batch

    tokenizer, features = setup
    gen = torch.Generator().manual_seed(1)
    masked_specials = []
    for i in range(0, len(features), 32):
        # a collator that forgot the special-tokens mask: [CLS] and [VS] become targets as often as codes
        batch = collate_codes(features[i:i + 32])
        batch["special_tokens_mask"] = torch.zeros_like(batch["special_tokens_mask"])
        masked_specials.append(mask_codes(batch, len(tokenizer), 0.15, generator=gen))
    findings = probe_mlm_batch(masked_specials, tokenizer)
    special = [f for f in findings if "mlm-skip-special-tokens" in f.recipes]
    assert special and special[0].severity == Severity.WARN
    assert set(special[0].evidence["by_token"]) <= {"[CLS]", "[VS]"} and special[0].examples
    padded = []
    for b in batches(setup):
        labels = b["labels"].clone()
        labels[b["attention_mask"] == 0] = 0  # labels padded with the pad id
        padded.append({**b, "labels": labels})
    findings = probe_mlm_batch(padded, tokenizer)
    pad = [f for f in findings if "padding positions carry a label" in f.title]
    assert pad and pad[0].severity == Severity.FAIL and pad[0].evidence["padding_targets"] > 0


def test_no_80_10_10_replacement(setup):
    from probes.mlm_batch import probe_mlm_batch

    findings = probe_mlm_batch(batches(setup, mask_share=1.0, random_share=0.0), setup[0])
    repl = [f for f in findings if "mlm-80-10-10" in f.recipes]
    assert repl and repl[0].severity == Severity.WARN and repl[0].evidence["replacement"]["mask"] > 0.99
    findings = probe_mlm_batch(batches(setup, mask_share=0.0, random_share=0.0), setup[0])
    repl = [f for f in findings if "mlm-80-10-10" in f.recipes]
    assert repl and repl[0].severity == Severity.FAIL and "not hidden" in repl[0].title


def test_lists_and_plain_ids_work_without_a_tokenizer(setup):
    from probes.mlm_batch import probe_mlm_batch

    as_lists = [{k: v.tolist() for k, v in b.items()} for b in batches(setup)]
    findings = probe_mlm_batch(as_lists, special_ids=range(6), mask_token_id=4, pad_token_id=0)
    assert not bad(findings)
    from ehrdebug.errors import UserError

    with pytest.raises(UserError, match="mask token"):
        probe_mlm_batch(as_lists, special_ids=range(6))
