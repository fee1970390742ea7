"""Findings model, the five renderers, configuration, code systems and the EHR grammar."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ehrdebug.codes import BUILTIN, detect_systems, find_codes, icd9_add_dot
from ehrdebug.config import load_config, split_tokens
from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Report, Severity
from ehrdebug.grammar import parse_sequence, score_generations, split_prompt
from ehrdebug.report.render import render


def _report() -> Report:
    return Report(
        "tok",
        [
            Finding("tokenizer.codes", Severity.WARN, "ICD-9 codes fragment", {"mean_pieces": 2.7}, [{"code": "V3001", "pieces": ["V", "300", "1"]}], ["add-code-tokens"]),
            Finding("tokenizer.roundtrip", Severity.OK, "round-trips", {"rate": 1.0}),
            Finding("tokenizer.structural", Severity.FAIL, "<demo> splits into 4 pieces", {"pieces": ["Ġ<", "dem", "o", ">"]}, recipes=["register-structural-tokens"], rule="one id each"),
        ],
    )


def test_ranking_and_exit_codes() -> None:
    report = _report()
    assert [f.severity for f in report.ranked()] == [Severity.FAIL, Severity.WARN, Severity.OK]
    assert report.worst == Severity.FAIL
    assert report.exit_code("fail") == 1 and report.exit_code("warn") == 1
    assert Report("x", [report.findings[0]]).exit_code("fail") == 0
    assert report.recipe_ids() == ["register-structural-tokens", "add-code-tokens"]
    assert Report.from_dict(json.loads(json.dumps(report.to_dict()))).to_dict() == report.to_dict()


def test_every_format_carries_the_evidence() -> None:
    report = _report()
    text = render(report, "text")
    assert "[FAIL] tokenizer.structural" in text and "'Ġ<', 'dem', 'o', '>'" in text
    assert json.loads(render(report, "json"))["findings"][0]["evidence"]["pieces"] == ["Ġ<", "dem", "o", ">"]
    suite = ET.fromstring(render(report, "junit")).find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    failure = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failure] == ["tokenizer.structural"]
    github = render(report, "github").splitlines()
    assert github[0].startswith("::error title=tokenizer.structural::") and github[1].startswith("::warning")
    markdown = render(report, "markdown")
    assert "| fail | `tokenizer.structural` |" in markdown and "&lt;demo&gt;" in markdown
    with pytest.raises(ValueError):
        render(report, "html")


def test_config_file_flags_and_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ehrdebug]\nstructural_tokens = ["<demo>", "<v>"]\nmax_length = 64\n[tool.ehrdebug.thresholds]\nnear_zero_loss = 0.01\n'
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    config = load_config(start=str(sub))
    assert config.structural_tokens == ["<demo>", "<v>"] and config.max_length == 64
    assert config.threshold("near_zero_loss") == 0.01 and config.threshold("overfit_rise") == 0.05
    assert config.with_overrides(max_length=128, task_prefix=None).max_length == 128
    (tmp_path / "ehrdebug.toml").write_text('structual_tokens = ["<v>"]\n')
    with pytest.raises(UserError, match="did you mean 'structural_tokens'"):
        load_config(start=str(tmp_path))
    assert split_tokens("<demo>,<v>, <\\v> <END>") == ["<demo>", "<v>", "<\\v>", "<END>"]


def test_code_systems() -> None:
    text = "56 ASIAN M <demo> <v> V3001 250.00 486 <\\v> <END>"
    assert find_codes(text, BUILTIN["icd9"]) == ["250.00"]
    assert find_codes(text, BUILTIN["icd9_nodot"]) == ["V3001", "486"]
    assert {s.name for s in detect_systems([text] * 3)} == {"icd9", "icd9_nodot"}
    assert find_codes("E11.9 and I21.4", BUILTIN["icd10"]) == ["E11.9", "I21.4"]
    assert icd9_add_dot("25000") == "250.00" and icd9_add_dot("V3001") == "V30.01" and icd9_add_dot("E8889") == "E888.9"
    assert icd9_add_dot("3615", kind="proc") == "36.15"


def test_grammar_scores_seed_000_outputs() -> None:
    good = "56 ASIAN M <demo> <v> V3001 250.00 <\\v> <END>"
    assert parse_sequence(good).valid
    assert split_prompt(good) == ("56 ASIAN M <demo>", "<v> V3001 250.00 <\\v> <END>")
    broken = "56 ASIAN M <demo> ASIAN m <demoing> 56 ASICEMo>"  # seed 000's sample 1
    assert parse_sequence(broken).reason.startswith("no <v>")
    assert parse_sequence("56 ASIAN M <demo> <v> 486 <\\v>").reason == "does not end with <END>"
    score = score_generations([good, broken, "56 ASIAN M <demo> <v> AS IAN <\\v> <END>"], {"V3001", "250.00"})
    assert score.structurally_valid == pytest.approx(2 / 3)
    assert score.valid_code_rate == pytest.approx(2 / 4) and score.unknown_codes == ["AS", "IAN"]
