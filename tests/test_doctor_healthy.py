"""Acceptance: the zoo's healthy BART run (the fixed seed-000 setup, trained for real) gets a doctor report with
no warn or fail, and the same one from ``ehrdebug doctor``, the TUI's service and the zoo itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Severity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tui_doctor_same_report import comparable  # noqa: E402


@pytest.mark.slow
def test_healthy_zoo_run_is_clean_from_cli_tui_and_zoo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrdebug.tui import services
    from recipes.zoo import CASES
    from recipes.zoo.runner import run_case

    zoo = run_case(CASES["healthy"], tmp_path / "healthy", data_root=tmp_path / "data")
    capsys.readouterr()  # the training's own progress lines
    assert main(["doctor", str(zoo.run_dir), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    tui = services.diagnose(services.doctor_target(services.open_run(zoo.run_dir)))
    for findings in (cli["findings"], [f.to_dict() for f in tui.findings], [f.to_dict() for f in zoo.report.findings]):
        loud = [f"{f['probe']}[{f['severity']}] {f['title']}" for f in findings if Severity.parse(f["severity"]) >= Severity.WARN]
        assert loud == []
    assert comparable(cli["findings"]) == comparable(tui.findings) == comparable(zoo.report.findings)
    [tf] = [f for f in tui.findings if f.probe == "generation.tf_vs_sampling"]
    assert tf.evidence["n"] >= 30 and tf.evidence["decoding_source"].startswith("the run's config")
    assert tf.evidence["valid_share_95ci"][0] >= 0.8  # valid within sampling error, not by luck of 8 prompts
    assert {"model", "data", "tokenizer", "curves"} <= set(cli["meta"]["suites"])


@pytest.mark.slow
def test_doctor_validity_agrees_with_the_runs_own_measure_when_the_decoder_writes_the_prompt(tmp_path: Path) -> None:
    """The demo's fixed run decodes from the prompt (decoder_prompt=true) at its own temperature: the doctor must
    generate the same way, so its structural validity agrees with the demo's table within sampling error."""
    import math

    from probes.doctor import diagnose
    from recipes.demo import measure
    from recipes.zoo import CASES
    from recipes.zoo.runner import run_case

    zoo = run_case(CASES["healthy"], tmp_path / "prompted", extra=["decoder_prompt=true", "max_length=96"],
                   data_root=tmp_path / "data")
    report = diagnose(zoo.run_dir)
    [tf] = [f for f in report.findings if f.probe == "generation.tf_vs_sampling"]
    assert tf.evidence["decoder_given_prompt"] is True and tf.evidence["n"] >= 30
    assert tf.severity == Severity.OK, tf.title
    own, _ = measure(zoo.run_dir, 32)  # the demo's own figure: the recipe's evaluation on held-out prompts
    p1, n1 = tf.evidence["structurally_valid"], tf.evidence["n"]
    p2, n2 = own["structural_validity"], own["n_held_out"]
    spread = 3.29 * math.sqrt(max(p1 * (1 - p1), 0.02) / n1 + max(p2 * (1 - p2), 0.02) / n2)  # 99.9%: two samples of 32, not a 1-in-20 flake
    assert abs(p1 - p2) <= spread, (p1, p2, spread)
