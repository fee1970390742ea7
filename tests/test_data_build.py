"""Task builders on the shipped sample: seed-000 format, splits by patient, vignettes, coding, vocabulary."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ehrdebug.data.build import SPLITS, seq2seq_records, split_of
from ehrdebug.data.coding import BY_ID, CONCEPTS
from ehrdebug.data.mimic import load_mimic3
from ehrdebug.data.records import format_code
from ehrdebug.data.sample import code_vocabulary, load_task, sample_data_dir
from ehrdebug.data.ship import ship
from ehrdebug.grammar import parse_sequence

# seed 000: "{age} {ETHNICITY} {sex} <demo> <v> CODES <\v> ... <END>", codes like 250.00, 486, V3001
SEED_LINE = re.compile(r"^\d{1,2} [A-Z][A-Z /\-()]*[A-Z)] [MF] <demo>( <v>( (\d{3}(\.\d{1,2})?|[VE]\d{2,4}))+ <\\v>)+ <END>$")


def test_shipped_sample_is_what_ship_regenerates(tmp_path: Path) -> None:
    ship(tmp_path)
    shipped = sample_data_dir()
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) >= 20
    for rel in files:
        assert (shipped / rel).read_bytes() == (tmp_path / rel).read_bytes(), f"{rel} is stale: run python -m ehrdebug.data.ship"


@pytest.mark.parametrize("split", SPLITS)
def test_seq2seq_lines_parse_and_match_seed_format(split: str) -> None:
    records = load_task("seq2seq", split)
    lines = (sample_data_dir() / "seq2seq" / f"{split}.txt").read_text(encoding="utf-8").splitlines()
    assert [r["text"] for r in records] == lines
    for r in records:
        assert r["text"] == f"{r['prompt']} {r['target']}"
        parsed = parse_sequence(r["text"])
        assert parsed.valid, (r["text"], parsed.reason)
        assert SEED_LINE.match(r["text"]), r["text"]
        assert len(parsed.visits) <= 4 and max(len(v) for v in parsed.visits) <= 6
        assert parsed.age is not None and 0 <= parsed.age <= 90


def test_seed_spelling_of_codes() -> None:
    vocab = set(code_vocabulary())
    assert {"250.00", "486", "401.9", "V3001", "V053"} <= vocab
    assert not {"25000", "4019", "V30.01"} & vocab
    assert format_code(("icd9", "V3001"), "dotted") == "V30.01"
    assert format_code(("icd9", "25000"), "mimic") == "25000"
    assert format_code(("icd9", "E8889"), "dotted") == "E888.9"
    assert format_code(("icd10", "E119"), "seed") == "E11.9"


def test_code_vocabulary_covers_every_code_in_the_texts() -> None:
    vocab = code_vocabulary()
    seen = Counter(c for s in SPLITS for r in load_task("seq2seq", s) for c in parse_sequence(r["text"]).codes)
    assert set(vocab) == set(seen) and len(vocab) == len(set(vocab))
    assert vocab[0] == seen.most_common(1)[0][0]


def test_code_style_options(tmp_path: Path) -> None:
    patients, _ = load_mimic3(str(sample_data_dir() / "mimic3"))
    dotted = " ".join(r["text"] for r in seq2seq_records(patients[:300], "dotted"))
    mimic = " ".join(r["text"] for r in seq2seq_records(patients[:300], "mimic", max_visits=2, max_codes=3))
    assert "V30.0" in dotted and "V3001" not in dotted
    assert "4019" in mimic and "401.9" not in mimic
    assert all(len(parse_sequence(r["text"]).visits) <= 2 for r in seq2seq_records(patients[:300], "mimic", 2, 3))


def test_demographics_carry_signal_for_codes() -> None:
    records = load_task("seq2seq", "train")
    newborn = [r for r in records if r["prompt"].startswith("0 ")]
    old = [r for r in records if parse_sequence(r["text"]).age >= 65]
    assert newborn and all(re.search(r"<v> V3[01]\d{2}", r["target"]) for r in newborn)
    share = sum("401.9" in r["target"] for r in old) / len(old)
    young = [r for r in records if 18 <= parse_sequence(r["text"]).age < 45]
    assert share > 2 * sum("401.9" in r["target"] for r in young) / len(young)
    assert not any("185" in parse_sequence(r["text"]).codes for r in records if " F <demo>" in r["prompt"])


def test_splits_are_by_patient_and_deterministic() -> None:
    for task in ("seq2seq", "codes", "coding"):
        ids = {s: {r["patient_id"] for r in load_task(task, s)} for s in SPLITS}
        assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
        assert not ids["validation"] & ids["test"]
        assert all(split_of(pid) == s for s, group in ids.items() for pid in group)
    sizes = {s: len(load_task("seq2seq", s)) for s in SPLITS}
    assert 0.6 < sizes["train"] / sum(sizes.values()) < 0.8


def test_codes_task_fields_and_labels() -> None:
    rows = [r for s in SPLITS for r in load_task("codes", s)]
    for r in rows:
        assert set(r) == {"patient_id", "codes", "ages", "visits", "days", "mortality", "next_visit_codes"}
        assert len(r["codes"]) == len(r["ages"]) == len(r["visits"]) == len(r["days"]) > 0
        assert r["visits"] == sorted(r["visits"]) and r["days"] == sorted(r["days"]) and r["days"][0] == 0
        assert r["next_visit_codes"] and r["mortality"] in (0, 1)
    assert 0.07 < sum(r["mortality"] for r in rows) / len(rows) < 0.14


def test_diagnosis_vignettes() -> None:
    data = {s: load_task("diagnosis", s) for s in SPLITS}
    everything = [r for rows in data.values() for r in rows]
    assert len(everything) >= 150 and len({r["input"] for r in everything}) == len(everything)
    assert len({r["specialty"] for r in everything}) >= 15
    assert 40 <= len({r["output"] for r in everything}) <= 70
    train = {r["output"] for r in data["train"]}
    assert {r["output"] for r in data["validation"] + data["test"]} <= train
    assert all(r["input"].endswith("What is the most likely diagnosis?") for r in everything)
    assert Counter(r["output"] for r in data["train"]).most_common()[-1][1] >= 3


def test_coding_task_uses_real_snomed_ids() -> None:
    rows = [r for s in SPLITS for r in load_task("coding", s)]
    assert 1000 < len(rows) < 2500
    assert {r["output"] for r in rows} <= set(BY_ID) and len({r["output"] for r in rows}) >= 20
    assert all(BY_ID[r["output"]].name == r["label"] and r["instruction"] and r["input"] for r in rows)
    known = {"233604007": "Pneumonia", "44054006": "Diabetes mellitus type 2", "38341003": None,
             "22298006": "Myocardial infarction", "49436004": "Atrial fibrillation"}
    assert all(BY_ID[k].name == v for k, v in known.items() if v)
    assert len({c.sctid for c in CONCEPTS}) == len(CONCEPTS) >= 30
    # the note names the diagnosis only sometimes: the label must be read from evidence
    named = sum(r["label"].lower() in r["input"].lower() for r in rows) / len(rows)
    assert named < 0.6


def test_jsonl_is_one_object_per_line() -> None:
    for task in ("seq2seq", "codes", "diagnosis", "coding"):
        text = (sample_data_dir() / task / "train.jsonl").read_text(encoding="utf-8")
        assert text.endswith("\n") and all(isinstance(json.loads(line), dict) for line in text.splitlines())


def test_sample_dir_override_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ehrdebug.errors import UserError

    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "test.jsonl").write_text('{"patient_id": 1, "codes": ["486"]}\n')
    monkeypatch.setenv("EHRDEBUG_SAMPLE_DATA", str(tmp_path))
    assert sample_data_dir() == tmp_path
    assert load_task("codes", "test") == [{"patient_id": 1, "codes": ["486"]}]
    with pytest.raises(UserError, match="records not found"):
        load_task("codes", "train")
    with pytest.raises(UserError, match="unknown task"):
        load_task("mimic3", "train")
    with pytest.raises(UserError, match="unknown split"):
        load_task("codes", "dev")
