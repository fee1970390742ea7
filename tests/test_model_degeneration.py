"""generation.degeneration on T5 models trained into seed 002's states."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ehrdebug.findings import Severity
from ehrdebug.recipe_ids import ALL
from probes.degeneration import degeneration, is_echo, repetition_loop
from probes.generation import generate_outputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401

INPUTS = [e["input"] for e in mf.diagnosis_examples(6, seed=99)]


def _run(kind, inputs=INPUTS):
    model, tok = mf.t5_scenario(kind)
    gen = generate_outputs(model, tok, inputs)
    return degeneration(inputs, gen.texts, output_ids=gen.ids, pad_token_id=tok.pad_token_id,
                        end_token_id=tok.eos_token_id, ended=gen.ended), gen


def _issue(findings, words):
    return [f for f in findings if words in f.title]


def test_unit_helpers():
    assert repetition_loop("Morbus Morbus Morbus") == "Morbus"
    assert repetition_loop("a b a b a b c") == "a b"
    assert repetition_loop("Pneumonia. DD: Bronchitis") is None
    assert is_echo("Symptoms: fever. What is the most likely diagnosis?", "What is the most likely diagnosis?")
    assert not is_echo("Symptoms: fever, cough.", "Pneumonia")


def test_unmasked_padding_gives_all_pad_output():
    findings, gen = _run("pad")
    pad = _issue(findings, "all-PAD")
    assert pad and pad[0].severity == Severity.FAIL and pad[0].recipes == ["mask-label-padding"]
    assert set(pad[0].examples[0]["ids"]) == {0}
    assert all(t == "" for t in gen.texts)


def test_labels_without_eos_loop_and_never_end():
    findings, _ = _run("loop")
    loop = _issue(findings, "repetition loop")
    assert loop and loop[0].severity == Severity.FAIL and loop[0].recipes == ["anti-repetition-decoding"]
    assert loop[0].examples[0]["loop"] in loop[0].examples[0]["output"]
    never = _issue(findings, "never emits")
    assert never and never[0].evidence["never_ends"] == 1.0


def test_truncated_inputs_give_one_output_for_every_input():
    findings, gen = _run("constant")
    const = _issue(findings, "same output")
    assert const and const[0].severity == Severity.FAIL
    assert const[0].recipes == ["train-longer", "lower-learning-rate"]  # fix-recipes; --auto applies the first (alternatives)
    top = max(set(gen.texts), key=gen.texts.count)
    assert gen.texts.count(top) >= 5 and top in mf.DIAGNOSES  # the majority diagnosis, whatever the input


def test_missing_prefix_echoes_the_input_and_healthy_is_ok():
    findings, _ = _run("prefix")
    assert all(r in ALL for f in findings for r in f.recipes)
    echo = _issue(findings, "input echo")
    assert echo and echo[0].severity == Severity.FAIL and echo[0].recipes == ["add-task-prefix"]
    healthy, gen = _run("healthy", [f"{mf.PREFIX} {t}" for t in INPUTS])
    assert [f.severity for f in healthy] == [Severity.OK], [f.title for f in healthy]
    assert healthy[0].evidence["distinct_outputs"] >= 3


@pytest.mark.parametrize("ended", [[False] * 4])
def test_never_ending_outputs_warn(ended):
    out = degeneration(["a", "b", "c", "d"], ["x y", "y z", "z w", "w x"], ended=ended)
    assert _issue(out, "never emits")[0].severity == Severity.WARN
