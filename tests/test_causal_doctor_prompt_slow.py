"""The doctor probes a causal-LM coding run on the prompts the run itself writes: a tiny ``llama_coding`` run
records its ``prompt_format`` in run.json, and the generation probes judge templated prompts (the note inside the
Alpaca template, the answer inside the code delimiters). Without that record they judge the raw note, which the
model never saw, and call a model that answers well a failure. Slow (about 25 s on one core)."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.mark.slow
def test_generation_probes_see_the_runs_prompt_template(tmp_path, capsys) -> None:
    from ehrdebug.cli.app import main
    from ehrdebug.findings import Severity
    from probes.doctor import diagnose

    run = tmp_path / "run"
    code = main(["train", "recipes/configs/llama_coding_lora_small.yaml", f"out={run}", "max_steps=40", "eval_every=40",
                 "num_eval_generations=2", "num_test_generations=2", "max_length=128", "threads=1",
                 "data.max_train=64", "warmup_steps=0"])  # fmt: skip
    assert code in (0, None), capsys.readouterr().err[-2000:]
    fmt = json.loads((run / "run.json").read_text())["prompt_format"]
    assert "{input}" in fmt["prompt"] and fmt["prompt"].endswith("### Response:\n")
    assert fmt["response"] == "<code> {target}</code>"

    findings = diagnose(run).findings
    found = {f.probe: f for f in findings}
    special, tf = found["model.special_token_probability"], found["generation.tf_vs_sampling"]
    degeneration = [f for f in findings if f.probe == "generation.degeneration"]
    for finding in (special, tf, *degeneration):
        prompt = finding.examples[0].get("prompt") or finding.examples[0].get("input")
        assert "### Instruction:\n" in prompt and prompt.endswith("### Response:\n"), prompt
    assert tf.examples[0]["target"].startswith("<code> ") and tf.examples[0]["target"].endswith("</code>")
    assert special.evidence["expected_first"] == ["<code>"] and special.severity < Severity.WARN, (
        special.title
    )
    assert all(f.evidence["empty"] == 0 for f in degeneration)
    causal = [f for f in findings if f.probe == "data.causal_labels"]  # its saved batches: padding masked out
    assert causal and all(f.severity < Severity.WARN for f in causal) and "data.mlm_batch" not in found

    raw = tmp_path / "raw"  # the same run without the record: the probes see the bare note and misjudge it
    shutil.copytree(run, raw)
    info = json.loads((raw / "run.json").read_text())
    del info["prompt_format"]
    (raw / "run.json").write_text(json.dumps(info))
    bare = {f.probe: f for f in diagnose(raw).findings}["model.special_token_probability"]
    assert "### Instruction" not in bare.examples[0]["prompt"]
    assert bare.severity >= Severity.WARN, bare.title
