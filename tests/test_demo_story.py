"""``ehrdebug demo``: seed 000 end to end on the shipped data, on a CPU (seed 002: test_demo_t5_story.py)."""

from __future__ import annotations

import json
import time

import pytest

# The doctor generates with the run's own decoding (sampling at temperature 1.3, the decoder writing the prompt):
# so judged, the broken run's outputs neither loop nor end on BART's EOS in >= 20% of generations (5/32 did), and
# seed 000's generation failure shows as invalid structure (tf_vs_sampling) instead of degeneration.
SEED_000_PROBES = {"tokenizer.structural", "model.new_embeddings", "generation.tf_vs_sampling", "tokenizer.codes"}


def test_demo_cli_refuses_a_used_directory(tmp_path):
    from ehrdebug.cli.app import main

    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_markdown_report_shapes():
    from recipes.demo import acceptance
    from recipes.zoo.report import comparison_rows, markdown

    before = {"structurally_valid": 0.04, "valid_code_rate": 0.03, "p_visit_after_demo": 4.5e-05}
    after = {"structurally_valid": 0.95, "valid_code_rate": 0.99, "p_visit_after_demo": 0.93}
    rows = comparison_rows(before, after)
    assert rows[0] == ("structurally valid sequences", "4.0%", "95.0%")
    assert rows[2][1] == "4.50e-05"
    checks = acceptance({**after, "structural_validity": 0.95})
    assert all(checks.values())
    text = markdown("t", before, after, [], [], [{"id": "block-pretrained-eos", "changes": []}], [], {"after": ["x"]}, ["loss.png"], checks)
    assert "\\|" in text and "PASS" in text and "![loss curves](loss.png)" in text


@pytest.mark.slow
def test_demo_seed_000_before_and_after(tmp_path, monkeypatch):
    """The acceptance of issue 5: broken run diagnosed, fixed via --auto, >=90% valid after, <5 minutes;
    run from a folder outside the checkout (issue 10: shipped data is found from the install)."""
    from ehrdebug.cli.app import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    out = tmp_path / "demo"
    start = time.time()
    code = main(["demo", "--out", str(out)])
    seconds = time.time() - start
    summary = json.loads((out / "summary.json").read_text())
    fired = {f["probe"] for f in summary["findings_before"]}
    assert SEED_000_PROBES <= fired, fired
    applied = {r["id"] for r in summary["fixes"]}
    assert {"register-structural-tokens", "add-code-tokens"} <= applied
    assert summary["findings_after"] == [], summary["findings_after"]  # issue 10: the fixed run is healthy
    assert applied & {"init-new-embeddings-mean", "init-new-embeddings-description"}
    after, before = summary["after"], summary["before"]
    assert after["structural_validity"] >= 0.9, after
    assert after["valid_code_rate"] >= 0.9, after
    assert after["p_visit_after_demo"] > 0.5, after
    assert after["structural_validity"] > before["structural_validity"]
    assert (out / "report.md").is_file() and (out / "loss.png").stat().st_size > 1000
    assert code == 0
    assert seconds < 300, f"demo took {seconds:.0f}s"
