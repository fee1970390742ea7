"""The text probes in a code timeline's terms, on EHRMamba's causal LM (issue 12).

``model.special_token_probability``: the mass on the structural tokens where the grammar puts them;
``generation.tf_vs_sampling``: free-running continuations judged for the visit/time grammar and known codes;
an untrained model is caught, a trained one passes the structural check — from the model's outputs, no labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cehr_fixtures import batch, one_thread, timeline_records, tokenizer, train  # noqa: E402


@pytest.fixture(scope="module")
def models() -> tuple[object, object, object, list[dict]]:
    """(tokenizer, untrained, trained) tiny EHRMamba causal LMs on two-visit timelines, and held-out records."""
    import copy

    import torch

    from ehrdebug.models.cehr_inputs import causal_lm_labels
    from ehrdebug.models.ehrmamba import EhrMambaConfig, EhrMambaForCausalLM

    with one_thread():
        records = timeline_records(96)
        tok = tokenizer(records)
        torch.manual_seed(0)
        config = EhrMambaConfig.for_tokenizer(tok, "small", hidden_size=32, num_hidden_layers=1, state_size=8)
        untrained = EhrMambaForCausalLM(config)
        trained = copy.deepcopy(untrained)
        batches = []
        for i in range(0, len(records), 16):
            inputs = batch(tok, records[i : i + 16], 32)
            batches.append((inputs, causal_lm_labels(inputs["input_ids"], inputs["attention_mask"])))
        losses = train(trained, batches, 80, lr=1e-2)
        assert losses[-1] < 0.6 * losses[0]
    return tok, untrained, trained, timeline_records(24, seed=1)


def test_structural_token_probability_catches_an_untrained_model_and_passes_a_trained_one(models) -> None:
    from ehrdebug.findings import Severity
    from probes.special_tokens import special_token_probability

    tok, untrained, trained, held = models
    with one_thread():
        bad = special_token_probability(untrained, tok, held)  # the registry's function, on code records
        good = special_token_probability(trained, tok, held)
    assert [f.probe for f in bad + good] == ["model.special_token_probability"] * 2
    assert bad[0].severity == Severity.WARN and bad[0].recipes == ["train-longer"]
    assert bad[0].evidence["fixed_slots"]["visit_start after time"]["mean_class_mass"] < 0.1
    assert good[0].severity == Severity.OK
    slots = good[0].evidence["fixed_slots"]
    assert (
        slots["time after visit_end"]["mean_class_mass"] > 0.9
        and slots["visit_start after time"]["mean_class_mass"] > 0.9
    )
    assert slots["time after visit_end"]["n"] == len(held)  # one gap per two-visit timeline
    kinds = {row["kind"]: row for row in good[0].evidence["structural_tokens"]}
    assert set(kinds) == {"visit_start", "visit_end", "time"} and kinds["visit_end"]["lift"] > 1
    assert good[0].evidence["pad_top1_share"] == 0.0 and good[0].evidence["timelines"] == len(held)


def test_free_running_continuations_are_judged_for_the_visit_grammar(models) -> None:
    from ehrdebug.findings import Severity
    from probes.generation import tf_vs_sampling

    tok, untrained, trained, held = models
    with one_thread():
        bad = tf_vs_sampling(untrained, tok, held, max_examples=16)[0]
        good = tf_vs_sampling(trained, tok, held, max_examples=16)[0]
    assert bad.probe == good.probe == "generation.tf_vs_sampling"
    assert bad.severity >= Severity.WARN and bad.evidence["structurally_valid"] < 0.2
    assert good.evidence["structurally_valid"] >= bad.evidence["structurally_valid"] + 0.4
    assert good.evidence["violations_per_100_tokens"] < bad.evidence["violations_per_100_tokens"] / 4
    assert good.evidence["tf_fixed_slot_mass"] > 0.9 and good.evidence["valid_code_rate"] == 1.0
    assert good.evidence["n"] == 16 and good.evidence["decoding"]["seed"] == 0
    lo, hi = good.evidence["valid_share_95ci"]
    assert lo <= good.evidence["structurally_valid"] <= hi
    assert bad.recipes == ["train-longer"] and bad.evidence["tf_illegal_mass_per_token"] > 0.3
    assert good.evidence["tf_illegal_mass_per_token"] < 0.05 and good.evidence["expected_valid_from_tf"] > 0.5
    with one_thread():
        again = tf_vs_sampling(trained, tok, held, max_examples=16)[0]
    assert again.evidence == good.evidence  # seeded: the same continuations every time


def test_continuations_far_worse_than_teacher_forcing_predicts_are_drift(models) -> None:
    """Continuations that break the grammar at every turn, from a model that keeps it teacher-forced: FAIL."""
    from ehrdebug.findings import Severity
    from probes.timeline_generation import Continued, timeline_tf_vs_sampling
    from probes.timeline_lm import Layout

    tok, _, trained, held = models
    prompt = tok.convert_tokens_to_ids("[VS] C1 C2 [VE]".split())
    drifting = tok.convert_tokens_to_ids("[VS] C3 [W1] [VE] [VE] C4 [LT] C5".split())
    fine = tok.convert_tokens_to_ids("[W1] [VS] C3 C4 [VE] [LT] [VS] C5".split())
    with one_thread():
        drift = timeline_tf_vs_sampling(
            trained, tok, held, Layout(max_length=32), continued=Continued([prompt] * 8, [drifting] * 8)
        )
        ok = timeline_tf_vs_sampling(
            trained, tok, held, Layout(max_length=32), continued=Continued([prompt] * 8, [fine] * 8)
        )
    assert drift[0].severity == Severity.FAIL and "drifts" in drift[0].title
    assert (
        drift[0].evidence["violations_per_100_tokens"] > 50 and drift[0].evidence["structurally_valid"] == 0.0
    )
    assert ok[0].severity == Severity.OK and ok[0].evidence["structurally_valid"] == 1.0


def test_grammar_judge_and_stream_extension() -> None:
    from probes.timeline_generation import _extend, judge_continuation
    from probes.timeline_lm import Kinds

    tok = tokenizer(timeline_records(16))
    kinds = Kinds(tok)

    def ids(text: str) -> list[int]:
        return tok.convert_tokens_to_ids(text.split())

    prompt = ids("[VS] C1 C2 [VE]")
    ok = judge_continuation(prompt, ids("[W2] [VS] C3 C4 [VE] [LT] [VS] C5"), kinds)
    assert ok["valid"] and ok["codes"] == 3 and ok["violations"] == 0 and ok["loop"] is None
    for text, problem in (("[VS] C3 [VE]", "[VS] after visit_end"), ("[W1] C3", "C3 after time"),
                          ("[W1] [VS] [VE]", "[VE] after visit_start"), ("[W1] [VS] C3 [PAD]", "[PAD] after code")):  # fmt: skip
        judged = judge_continuation(prompt, ids(text), kinds)
        assert not judged["valid"] and judged["problem"].startswith(problem), (text, judged)
    loop = judge_continuation(prompt, ids("[W0] [VS] C3 C3 C3 C3"), kinds)
    assert (
        loop["valid"] and loop["loop"] == "C3"
    )  # grammatical, but a loop (generation.degeneration reports it)
    assert judge_continuation(prompt, ids("[W0] [VS] C3"), kinds, known_codes={"C1"})["known_codes"] == 0

    feature = {"input_ids": prompt, "attention_mask": [1] * 4, "token_type_ids": [2, 1, 1, 3], "segment_ids": [1] * 4,
               "position_ids": [1] * 4, "special_tokens_mask": [1, 0, 0, 1], "time_values": [10.0] * 4,
               "age_values": [50.0] * 4}  # fmt: skip
    for tid in ids("[M2] [VS] C3"):
        _extend(feature, tid, kinds, max_visits=64)
    assert feature["position_ids"][-3:] == [2, 2, 2] and feature["segment_ids"][-3:] == [2, 2, 2]
    assert feature["time_values"][-1] == 10.0 + 75.0 and feature["token_type_ids"][-3:] == [4, 2, 1]
    assert feature["age_values"][-1] == pytest.approx(50.0 + 75.0 / 365.25)
