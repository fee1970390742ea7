"""CEHR-BERT, BigBird and EHRMamba on a MEDS dataset with a MEDS task (issue 12), built from meds-testing-helpers.

The dataset is the MEDS project's own generator (300 subjects, metadata splits, static rows, numeric values,
a code vocabulary that is not ICD). The task is written as MEDS label files (``subject_id``,
``prediction_time``, ``boolean_value``): at the middle event time of each subject, does the next event come
within a year. ``ehrdebug data build codes --source meds ROOT --labels TASK`` turns it into code records with
the generic ``label`` field; the recipes train on them with ``label_field=label`` and write test AUROC/AUPRC/F1
and MEDS-schema predictions (the BEHRT classifier's writer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
TASK = "next_event_within_year"
TINY = ["threads=1", "log_every=1", "device=cpu", "model.hidden_size=32", "model.num_hidden_layers=1", "max_length=48",
        "max_minutes=null", "tokenizer.min_frequency=1"]  # fmt: skip
CLASSIFY = ["bootstrap=20", "label_field=label"]  # the classifier's keys: a 0/1 MEDS task's generic field
BERT = ["model.num_attention_heads=2", "model.intermediate_size=64"]
MAMBA = ["model.state_size=8"]


def write_task(root: Path) -> list[tuple[int, object, bool]]:
    """MEDS labels under ``root/task_labels/TASK/``: one row per subject with 3+ event times."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    times: dict[int, set] = {}
    for shard in sorted((root / "data").rglob("*.parquet")):
        table = pq.read_table(shard, columns=["subject_id", "time"])
        for sid, when in zip(
            table.column("subject_id").to_pylist(), table.column("time").to_pylist(), strict=True
        ):
            if when is not None:
                times.setdefault(sid, set()).add(when)
    rows = []
    for sid, stamps in sorted(times.items()):
        ordered = sorted(stamps)
        if len(ordered) >= 3:
            cut = ordered[len(ordered) // 2]
            rows.append((sid, cut, ordered[len(ordered) // 2 + 1] - cut <= timedelta(days=365)))
    out = root / "task_labels" / TASK
    out.mkdir(parents=True)
    pq.write_table(pa.table({"subject_id": pa.array([r[0] for r in rows], pa.int64()),
                             "prediction_time": pa.array([r[1] for r in rows], pa.timestamp("us")),
                             "boolean_value": [r[2] for r in rows]}), out / "0.parquet")  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def meds_codes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, object, bool]]]:
    """A generated MEDS root with the task, built into code records through the CLI."""
    pytest.importorskip("meds_testing_helpers.dataset_generator")
    from ehrdebug.cli.app import main

    base = tmp_path_factory.mktemp("meds_models")
    root = base / "root"
    args = [
        "seed=1",
        "N_subjects=300",
        "do_overwrite=False",
        f"output_dir={root}",
        "dataset_spec/data_generator=sample",
    ]
    code = "from meds_testing_helpers.dataset_generator import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = write_task(root)
    out = base / "codes"
    assert (
        main(["data", "build", "codes", str(root), "--source", "meds", "--labels", TASK, "--out", str(out)])
        == 0
    )
    return out, rows


def _records(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def _train(name: str, data: Path, out: Path, *overrides: str) -> tuple[Path, dict]:
    from recipes.train.config import load_recipe_config
    from recipes.train.loop import run_training

    config = load_recipe_config(
        CONFIGS / f"{name}.yaml", [*TINY, f"data.codes_dir={data}", f"out={out}", *overrides]
    )
    run = run_training(config)
    return run, json.loads((run / "artifacts" / "metrics_summary.json").read_text())


def _check_classifier(run: Path, summary: dict, data: Path, rows: list[tuple[int, object, bool]]) -> None:
    """Test figures in metrics_summary and MEDS predictions that are the test split's label rows, in order."""
    import pyarrow.parquet as pq

    test = _records(data, "test")
    figures = summary["test"]
    assert {"test_auroc", "test_auprc", "test_f1"} <= set(figures)
    assert all(0 <= figures[k] <= 1 for k in ("test_auroc", "test_auprc", "test_f1"))
    assert figures["test_prevalence"] == pytest.approx(sum(r["label"] for r in test) / len(test))
    table = pq.read_table(run / summary["predictions"]).to_pylist()
    assert len(table) == len(test) and {"subject_id", "prediction_time", "boolean_value",
                                         "predicted_boolean_value", "predicted_boolean_probability"} <= set(table[0])  # fmt: skip
    truth = {(sid, when.isoformat()): bool(value) for sid, when, value in rows}
    for row, record in zip(table, test, strict=True):
        key = (row["subject_id"], row["prediction_time"].isoformat())
        assert key == (record["patient_id"], record["prediction_time"]) and truth[key] == bool(
            row["boolean_value"]
        )
        assert 0 <= row["predicted_boolean_probability"] <= 1


def test_meds_task_records_become_cehr_timelines_with_static_rows_and_time_tokens(meds_codes) -> None:
    from ehrdebug.models.cehr_inputs import TIME_TOKENS, TOKEN_TYPES
    from recipes.train.config import load_recipe_config
    from recipes.train.task import get_task

    data, rows = meds_codes
    train = _records(data, "train")
    assert sum(len(_records(data, s)) for s in ("train", "validation", "test")) == len(rows)
    assert {r["label"] for r in train} == {0, 1} and all("mortality" not in r for r in train)
    for recipe, name in (
        ("ehrmamba_classify", "ehrmamba_mortality_small"),
        ("cehrbert_classify", "cehrbert_mortality_small"),
    ):
        task = get_task(recipe)
        config = load_recipe_config(
            CONFIGS / f"{name}.yaml", [*TINY, *CLASSIFY, f"data.codes_dir={data}", "init_from=null"]
        )
        assert len(task.records(config, "train")) == len(
            train
        )  # every MEDS row is usable under label_field=label
        tokenizer = task.tokenizer(config, None)
        features = task.features(train, tokenizer, config)
        assert [f["label"] for f in features] == [r["label"] for r in train]
        record, encoded = next((r, e) for r in train if len(set(r["visits"])) >= 3 and r["codes"][0].startswith("static//")
                               and not (e := task.encode(tokenizer, r, config))["truncated"])  # fmt: skip
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        assert (
            tokens[tokens.index("[VS]") + 1] == record["codes"][0] and "[UNK]" not in tokens
        )  # static rows lead
        assert (
            sum(t in TIME_TOKENS for t in tokens) == len(set(record["visits"])) - 1
        )  # one gap token per visit gap
        assert max(encoded["time_values"]) == pytest.approx(max(record["days"]))  # days from the MEDS times
        assert encoded["token_type_ids"].count(TOKEN_TYPES["time"]) == len(set(record["visits"])) - 1


@pytest.mark.slow
def test_ehrmamba_pretrain_then_classify_on_the_meds_task(meds_codes, tmp_path: Path) -> None:
    data, rows = meds_codes
    pre, summary = _train(
        "ehrmamba_pretrain_small", data, tmp_path / "pre", *MAMBA, "max_steps=20", "eval_every=20", "lr=5e-3"
    )
    assert {"test_next_token_accuracy", "test_perplexity"} <= set(summary["test"])
    run, summary = _train("ehrmamba_mortality_small", data, tmp_path / "mort", *MAMBA, *CLASSIFY, "max_steps=10", "eval_every=10",
                          "runtime_probe=false", f"init_from={pre}")  # fmt: skip
    _check_classifier(run, summary, data, rows)
    assert json.loads((run / "run.json").read_text())["config"]["label_field"] == "label"
    from probes.doctor import diagnose  # the doctor opens MEDS runs as it opens the shipped ones

    skip = {"data": "not under test here"}
    lm = {f.probe: f for f in diagnose(pre, skip=skip).findings}
    assert lm["model.special_token_probability"].evidence["timelines"] == 30  # the validation split's records
    assert lm["generation.tf_vs_sampling"].evidence["n"] == 16 and "runtime.mamba_fast_path" in lm
    classifier = diagnose(run, skip=skip).findings
    assert any(f.probe == "model.pooling" and f.severity.label == "ok" for f in classifier)
    assert any(f.probe == "data.label_leakage" and "'label'" in f.title for f in classifier)


@pytest.mark.slow
def test_cehrbert_mlm_then_classify_on_the_meds_task(meds_codes, tmp_path: Path) -> None:
    data, rows = meds_codes
    mlm, summary = _train(
        "cehrbert_mlm_small", data, tmp_path / "mlm", *BERT, "max_steps=20", "eval_every=20"
    )
    assert {"test_mlm_accuracy", "test_perplexity"} <= set(summary["test"])
    run, summary = _train("cehrbert_mortality_small", data, tmp_path / "mort", *BERT, *CLASSIFY, "max_steps=10", "eval_every=10",
                          f"init_from={mlm}")  # fmt: skip
    _check_classifier(run, summary, data, rows)


@pytest.mark.slow
def test_bigbird_classify_on_the_meds_task(meds_codes, tmp_path: Path) -> None:
    data, rows = meds_codes
    run, summary = _train("bigbird_mortality_small", data, tmp_path / "bird", *BERT, *CLASSIFY, "max_steps=10", "eval_every=10",
                          "model.block_size=4")  # fmt: skip
    _check_classifier(run, summary, data, rows)
    config = json.loads((run / summary["best_checkpoint"] / "config.json").read_text())
    assert config["model_type"] == "cehrbert" and config["attention"] == "bigbird"
