"""data.collator on real reproductions (seed 002's crash and pad labels, masked EOS, prompt loss, MLM)
and healthy counter-cases, through the probe API and the ``check collator`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrdebug.cli.app import main
from ehrdebug.findings import Severity

FIX = Path(__file__).resolve().parent / "fixtures" / "dataprobe"
T5TOK, T5MODEL, LLAMATOK, BERTTOK = (str(FIX / n) for n in ("t5tok", "t5model", "llamatok", "berttok"))

SEED002 = [
    {"input": "symptoms : fever , cough . crp : 67 . imaging : infiltrate basal right . what is the most likely diagnosis ?",
     "output": "pneumonia"},
    {"input": "symptoms : dyspnea , left leg swelling . d-dimer elevated . what is the most likely diagnosis ?",
     "output": "pulmonary embolism"},
    {"input": "symptoms : fatigue , pallor . hb : low . what is the most likely diagnosis ?", "output": "anemia"},
    {"input": "symptoms : chest pain , high troponin , ekg st-elevation . what is the most likely diagnosis ?",
     "output": "myocardial infarction"},
    {"input": "symptoms : polyuria , polydipsia , blood glucose 320 mg/dl . what is the most likely diagnosis ?",
     "output": "diabetes mellitus"},
]
SFT = [
    {"prompt": "### instruction : assign the snomed code . ### note : patient with cough and fever . ### response :",
     "output": "code 233604007"},
    {"prompt": "### instruction : assign the snomed code . ### note : cough . ### response :", "output": "code 428 250"},
    {"prompt": "### instruction : assign the snomed code . ### response :", "output": "code 401"},
]


def _tok(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _seed002_tokenized() -> list[dict]:
    """Seed 002's own tokenize(): padding='max_length', labels = target input_ids, map() keeps the text."""
    tok = _tok(T5TOK)

    def tokenize(example: dict) -> dict:
        input_enc = tok(example["input"], truncation=True, padding="max_length", max_length=32)
        output_enc = tok(example["output"], truncation=True, padding="max_length", max_length=8)
        input_enc["labels"] = output_enc["input_ids"]
        return {**example, **input_enc}  # datasets.map() adds the new columns beside the old ones

    return [tokenize(e) for e in SEED002 * 2]


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _by(findings, sev):
    return [f for f in findings if f.severity == sev]


def test_seed002_string_columns_crash_is_caught_and_named():
    from transformers import DataCollatorForSeq2Seq

    from probes.data_collator import probe_collator

    feats = _seed002_tokenized()
    tok = _tok(T5TOK)
    with pytest.raises(ValueError, match="excessive nesting"):  # the crash the seed hit, for real
        DataCollatorForSeq2Seq(tok)(feats[:2])
    findings = probe_collator(feats, tok, "seq2seq")
    crash = [f for f in findings if "non-tensor" in f.title]
    assert crash and crash[0].severity == Severity.FAIL
    assert crash[0].evidence["non_tensor_columns"] == {"input": "string", "output": "string"}
    assert "excessive nesting" in crash[0].evidence["error"]
    assert crash[0].recipes == ["remove-string-columns"]
    # checks go on without the stray columns: the max_length pad ids in labels are found
    pad = [f for f in findings if "padded with the pad id" in f.title]
    assert pad and pad[0].severity == Severity.FAIL and pad[0].recipes == ["mask-label-padding"]
    assert pad[0].evidence["rows_affected"] == 10
    # "pneumonia </s>" then 6 pads: 6 of 8 label positions carry loss on <pad>
    assert "pneumonia </s> <pad> <pad> <pad> <pad> <pad> <pad>" in pad[0].examples[0]["labels (loss positions)"]


def test_check_collator_cli_on_seed002_file(tmp_path, capsys):
    data = _jsonl(tmp_path / "tokenized.jsonl", _seed002_tokenized())
    code = main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "seq2seq",
                 "--model", T5MODEL, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    titles = " | ".join(f["title"] for f in report["findings"])
    assert "input (string), output (string)" in titles and "instead of -100" in titles


def test_healthy_seq2seq_raw_data_passes(tmp_path, capsys):
    data = _jsonl(tmp_path / "raw.jsonl", SEED002 * 2)
    code = main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "seq2seq",
                 "--model", T5MODEL, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["worst"] == "ok"
    ok = report["findings"][0]
    assert ok["evidence"]["decoder_start_token_id"] == 0
    assert ok["evidence"]["batch_shapes"][0]["decoder_input_ids"]  # built by the real T5 shift
    # raw data tokenized with --padding max_length reproduces the seed's pad-in-labels bug
    code = main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "seq2seq",
                 "--padding", "max_length", "--format", "json"])
    assert code == 1 and "instead of -100" in capsys.readouterr().out


def test_decoder_start_twice_and_wrong_shift():
    from transformers import DataCollatorForSeq2Seq

    from probes.data_collator import probe_collator

    tok = _tok(T5TOK)
    feats = []
    for e in SEED002:
        enc = dict(tok(e["input"]))
        enc["labels"] = [0] + tok(e["output"])["input_ids"]  # start token written into the labels by hand
        feats.append(enc)
    twice = probe_collator(feats, tok, "seq2seq", decoder_start_token_id=0)
    assert any("start token (0)" in f.title and f.severity == Severity.WARN for f in twice)

    def no_shift(batch_features):
        batch = DataCollatorForSeq2Seq(tok)(batch_features)
        batch["decoder_input_ids"] = batch["labels"].clamp(min=0)  # forgot to shift right
        return batch

    clean = [{**f, "labels": f["labels"][1:]} for f in feats]
    wrong = probe_collator(clean, tok, "seq2seq", collator=no_shift, decoder_start_token_id=0)
    assert any("not the labels shifted right" in f.title and f.severity == Severity.FAIL for f in wrong)
    assert _by(probe_collator(clean, tok, "seq2seq", decoder_start_token_id=0), Severity.OK)


def test_causal_sft_healthy_vs_eos_masked_by_lm_collator(tmp_path):
    from probes.data_suite import load_tokenizer, run_collator_probe

    tok, notes = load_tokenizer(LLAMATOK, "causal")
    assert tok.pad_token_id == tok.eos_token_id and notes
    good = run_collator_probe(SFT * 3, tok, "causal", input_field="prompt", target_field="output")
    assert [f.severity for f in good] == [Severity.OK]
    view = good[0].examples[0]["tokens (loss positions)"]
    assert view.startswith("[no loss ×") and view.endswith("code 233604007 </s>")
    # the same data as plain token ids through DataCollatorForLanguageModeling(mlm=False), pad == eos:
    ids = [{"input_ids": tok(r["prompt"] + " " + r["output"])["input_ids"] + [tok.eos_token_id]} for r in SFT * 3]
    bad = run_collator_probe(ids, tok, "causal")
    eos = [f for f in bad if "final EOS is masked" in f.title]
    assert eos and eos[0].severity == Severity.FAIL and eos[0].evidence["rows_affected"] == 9
    assert eos[0].examples[0]["tokens (loss positions)"].endswith("[no loss ×1: </s>]")


def test_causal_prompt_carrying_loss_is_found():
    from probes.data_suite import load_tokenizer, run_collator_probe

    tok, _ = load_tokenizer(LLAMATOK, "causal")
    rows = []
    for r in SFT:
        ids = tok(r["prompt"] + " " + r["output"])["input_ids"] + [tok.eos_token_id]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids), "prompt": r["prompt"]})
    findings = run_collator_probe(rows, tok, "causal", input_field="prompt")
    assert any(f.title.startswith("prompt tokens carry loss in 3/3") for f in findings)


def test_prepadded_ids_without_attention_mask_attend_padding():
    from probes.data_collator import probe_collator

    tok = _tok(T5TOK)
    feats = []
    for e in SEED002:
        enc = tok(e["input"], padding="max_length", max_length=32)
        feats.append({"input_ids": enc["input_ids"], "labels": tok(e["output"])["input_ids"]})  # mask dropped
    findings = probe_collator(feats, tok, "seq2seq")
    assert any("padding is attended" in f.title and f.evidence["rows_affected"] == 5 for f in findings)


def test_mlm_healthy_and_special_tokens_masked():
    from transformers import DataCollatorForLanguageModeling

    from probes.data_collator import probe_collator

    tok = _tok(BERTTOK)
    texts = ["A01 B02 <v> C03 D04 <\\v> E05 F06 G07 H08 I09 J10 A01 B02 C03"] * 32
    feats = [dict(tok(t, return_special_tokens_mask=True)) for t in texts]
    healthy = probe_collator(feats, tok, "mlm", batch_size=8, max_batches=4)
    assert [f.severity for f in healthy] == [Severity.OK]
    assert 0.07 < healthy[0].evidence["mlm_masked_share"] < 0.3
    broken = [{**f, "special_tokens_mask": [0] * len(f["input_ids"])} for f in feats]  # wrong mask from a script
    coll = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.5, seed=0)
    bad = probe_collator(broken, tok, "mlm", collator=coll)
    assert any("special or padding positions are MLM targets" in f.title for f in bad)


def test_user_collator_from_file_and_user_errors(tmp_path, capsys):
    script = tmp_path / "my_collate.py"
    script.write_text(
        "from transformers import DataCollatorForSeq2Seq\n"
        "def make(tokenizer):\n"
        "    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=tokenizer.pad_token_id)\n",
        encoding="utf-8",
    )
    data = _jsonl(tmp_path / "raw.jsonl", SEED002)
    code = main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "seq2seq",
                 "--collator", f"{script}:make", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1 and "instead of -100" in out  # label_pad_token_id=pad puts pad ids into the loss
    assert main(["check", "collator", "--data", str(tmp_path / "none.jsonl"), "--tokenizer", T5TOK,
                 "--model-type", "seq2seq"]) == 2
    assert main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "gpt"]) == 2
    assert main(["check", "collator", "--data", data, "--tokenizer", str(tmp_path / "missing"),
                 "--model-type", "seq2seq"]) == 2
    assert main(["check", "collator", "--data", data, "--tokenizer", T5TOK, "--model-type", "seq2seq",
                 "--collator", "nosuchmodule_xyz:thing"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("ehrdebug: error:") == 4


def test_crash_not_caused_by_string_columns_is_not_blamed_on_them():
    from probes.data_collator import probe_collator

    tok = _tok(LLAMATOK)  # no pad token set: padding itself is impossible
    assert tok.pad_token is None
    feats = [{"input_ids": tok(r["prompt"])["input_ids"], "prompt": r["prompt"]} for r in SFT]
    both = probe_collator(feats, tok, "causal")
    assert len(both) == 1 and both[0].severity == Severity.FAIL
    assert both[0].title.startswith("the collator crashed, with or without")
    assert "pad" in both[0].evidence["error_without_those_columns"].lower()
    plain = probe_collator([{"input_ids": f["input_ids"]} for f in feats], tok, "causal")
    assert plain[0].title.startswith("the collator crashed on the first batch")
