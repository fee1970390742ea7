"""One top-codes counter: the add-code-tokens fix adds the codes training would add (same counts, same ties)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

RECORDS = [  # 401.9 and 250.00 tie on count; 486 appears in prompts/text too, which must not count twice
    {"prompt": "56 ASIAN M <demo>", "target": "<v> 486 401.9 <\\v> <v> 250.00 <\\v> <END>"},
    {"prompt": "70 WHITE F <demo>", "target": "<v> 250.00 486 <\\v> <END>"},
    {"prompt": "61 BLACK M <demo>", "target": "<v> 401.9 486 V3001 <\\v> <END>"},
]


def test_training_and_the_fix_count_codes_the_same_way(tmp_path: Path) -> None:
    from ehrdebug.codes import top_codes
    from recipes.fixes import resolve_target
    from recipes.fixes.tokens import top_codes as fix_top_codes
    from recipes.train.tokens import top_codes as train_top_codes

    data = tmp_path / "data" / "seq2seq"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text("".join(json.dumps({**r, "text": f"{r['prompt']} {r['target']}"}) + "\n"
                                              for r in RECORDS))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"recipe": "bart_ehrgen", "data": {"task": "seq2seq", "root": str(tmp_path / "data")},
                                      "special_tokens": ["<demo>", "<v>", "<\\v>", "<END>"]}))
    structural = {"<demo>", "<v>", "<\\v>", "<END>"}
    trained = train_top_codes([r["target"] for r in RECORDS], structural, 3)
    assert trained == ["486", "250.00", "401.9"]  # 3, then the 2-2 tie alphabetically
    assert fix_top_codes(resolve_target(config), 3) == trained
    assert top_codes([r["target"] for r in RECORDS], 10) == ["486", "250.00", "401.9", "V3001"]
    assert top_codes(["Pneumonia", "Anemia", "Pneumonia <END>"], 2, {"<END>"}) == ["Pneumonia", "Anemia"]
