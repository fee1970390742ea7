"""Seq2seq targets are judged against max_target_length, not the encoder's max_length."""

from __future__ import annotations

from pathlib import Path

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Severity
from ehrdebug.grammar import split_prompt
from probes.tokenizer_suite import run_tokenizer_probes

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tok"


def _lengths(findings: list) -> dict[str, object]:
    return {f.subject: f for f in findings if f.probe == "tokenizer.lengths"}


def test_long_targets_within_the_decoder_limit_do_not_fail() -> None:
    lines = (FIXTURES / "seq2seq_train.txt").read_text().splitlines()
    prompts, targets = zip(*(split_prompt(line) for line in lines), strict=True)
    cfg = EhrDebugConfig(structural_tokens=["<demo>", "<v>", "<\\v>", "<END>"], end_token="<END>",
                         max_length=64, max_target_length=400)
    tok = FIXTURES / "tiny_bpe"
    # judged together against the encoder limit, targets look truncated (the doctor's old false failure)
    together = _lengths(run_tokenizer_probes(str(tok), [*prompts, *targets], cfg))
    assert max(f.severity for f in together.values()) >= Severity.WARN
    split = _lengths(run_tokenizer_probes(str(tok), list(prompts), cfg, targets=list(targets)))
    assert set(split) == {"inputs", "targets"}
    assert split["inputs"].severity == Severity.OK and split["targets"].severity == Severity.OK
    assert split["targets"].evidence["max_length"] == 400
    # and a decoder limit that really cuts <END> off still fails
    tight = _lengths(run_tokenizer_probes(str(tok), list(prompts), EhrDebugConfig(
        structural_tokens=cfg.structural_tokens, end_token="<END>", max_length=64, max_target_length=12), targets=list(targets)))
    assert tight["targets"].severity == Severity.FAIL
