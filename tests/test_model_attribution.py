"""attribution: integrated gradients rank the input token that decides the output first."""

from __future__ import annotations

import sys
from pathlib import Path

from ehrdebug.findings import Severity
from probes.attribution import attribution, token_attributions

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_fixtures as mf  # noqa: E402
from model_fixtures import single_thread  # noqa: E402,F401


def test_key_token_ranks_first():
    model, tok = mf.key_token_llama()
    cases = [(p, a) for p, a in mf.key_token_lines(30, seed=77) if a != "none"][:10]
    firsts = []
    for prompt, answer in cases:
        rows, explained = token_attributions(model, tok, prompt, target=answer)
        assert explained["target"] == answer and explained["target_prob"] > 0.5
        firsts.append(rows[0]["piece"])
    assert sum(p.startswith("KEY") for p in firsts) >= 8, firsts


def test_attribution_finding_on_seq2seq_explains_expected_token():
    model, tok, _, _ = mf.bart_with_new_tokens("random", 20)
    findings = attribution(model, tok, mf.ehr_examples(2, seed=5), n_steps=8)
    f = findings[0]
    assert f.severity == Severity.INFO and f.evidence["tables"][0]["target"] == "<v>"
    ranking = f.evidence["tables"][0]["ranking"]
    assert {r["piece"] for r in ranking} <= set(mf.ehr_examples(2, seed=5)[0]["prompt"].split())
    assert abs(sum(r["share"] for r in ranking) - 1) < 1e-3
