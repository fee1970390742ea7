"""Events after the prediction time (data.label_leakage) and next-visit popularity collapse (metrics.next_visit):
the probes read times and rankings, the fixes cut a copy of the records / start the head at the code prior."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from ehrdebug.findings import Severity

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "configs"


def _config(name: str, *overrides: str) -> dict:
    from recipes.train import load_recipe_config

    return load_recipe_config(str(CONFIGS / f"{name}.yaml"), list(overrides))


def _late(findings):
    return [f for f in findings if "after their prediction time" in f.title]


def test_iso_times_are_compared_even_beside_days_and_lists_stay_aligned():
    from probes.leakage import cut_at_prediction, probe_label_leakage, time_fields

    record = {"codes": ["A", "B", "C"], "days": [0, 30, 60], "ages": [50, 50, 50],
              "times": ["2150-01-01T12:00", "2150-01-31T12:00", "2150-03-02T09:00"],
              "prediction_time": "2150-02-01T00:00", "mortality": 1}
    assert time_fields(record) == ("times", "prediction_time")  # days against an ISO time would not compare
    fired = _late(probe_label_leakage([record, {**record, "mortality": 0}]))
    assert fired and fired[0].severity == Severity.FAIL and "cut-at-prediction-time" in fired[0].recipes
    assert fired[0].evidence["later_events"] == 2 and fired[0].examples[0]["late"][0]["code"] == "C"
    cut, dropped = cut_at_prediction(record)
    assert dropped == 1 and cut["codes"] == ["A", "B"] and cut["days"] == [0, 30] and cut["ages"] == [50, 50]
    assert cut["times"] == record["times"][:2] and record["codes"] == ["A", "B", "C"]  # the input is not edited
    ok = probe_label_leakage([cut, {**cut, "mortality": 0}])
    assert not _late(ok) and any(f.severity == Severity.OK and "no event after" in f.title for f in ok)
    # an event exactly at the prediction time is allowed (MEDS prediction times are inclusive)
    at = {**record, "times": [*record["times"][:2], "2150-02-01T00:00"]}
    assert cut_at_prediction(at)[1] == 0


def test_days_since_first_event_against_iso_is_not_guessed_at():
    from probes.leakage import probe_label_leakage

    meds_like = [{"codes": ["A", "B"], "days": [0, 400], "prediction_time": "2150-02-01T00:00", "label": v} for v in (0, 1)]
    findings = probe_label_leakage(meds_like)
    assert not _late(findings)  # no anchor: days since the first event cannot be put against an ISO time
    late = [{**r, "prediction_day": 10} for r in meds_like]
    assert _late(probe_label_leakage(late))[0].evidence["time_field"] == "days"


def test_the_zoo_records_leak_and_the_fix_cuts_a_copy(tmp_path):
    from probes.leakage import probe_label_leakage
    from recipes.fixes import apply_fixes
    from recipes.fixes.base import Target
    from recipes.fixes.registry import get
    from recipes.train.task import get_task
    from recipes.zoo.code_leak_data import prepare_late_events

    (override,) = prepare_late_events(tmp_path)
    source = Path(override.split("=", 1)[1])
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.jsonl")}
    cfg = _config("behrt_mortality_small", override)
    task = get_task("behrt_classify")
    broken = _late(probe_label_leakage(task.records(cfg, "train"), label_field="mortality"))
    assert broken and broken[0].evidence["records_with_later_events"] > 600
    # preview (no output folder): the change is described, nothing is written
    preview = get("cut-at-prediction-time").preview(Target(path=tmp_path, kind="config", config=cfg))
    assert "data.codes_dir" in preview[0] and not list(tmp_path.glob("**/data-cut-at-prediction-time"))
    yaml_path = tmp_path / "broken.yaml"
    yaml_path.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    result = apply_fixes(yaml_path, ["cut-at-prediction-time"], tmp_path / "fix")
    from recipes.train import load_recipe_config

    fixed = load_recipe_config(str(result.config_path), [])
    cut_dir = Path(fixed["data"]["codes_dir"])
    assert cut_dir.parent == (tmp_path / "fix").resolve() and cut_dir != source
    records = task.records(fixed, "train")
    assert not _late(probe_label_leakage(records, label_field="mortality"))
    shipped = get_task("behrt_classify").records(_config("behrt_mortality_small"), "train")
    assert [r["codes"] for r in records] == [r["codes"] for r in shipped]  # back to the history before the stay
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.jsonl")}


def test_next_visit_collapse_is_judged_on_every_k():
    from probes.task_metrics import probe_next_visit

    rng = random.Random(0)
    codes = [f"C{i}" for i in range(60)]
    train = [rng.sample(codes[:30], 5) for _ in range(300)]
    popular = [c for c, _ in Counter(c for t in train for c in t).most_common(20)]
    history = [rng.sample(codes, 8) for _ in range(200)]
    truth = [h[:3] + rng.sample(codes[:30], 2) for h in history]  # three codes repeat from the history
    one_list = probe_next_visit(truth, [popular] * len(truth), train)
    assert one_list[0].severity == Severity.FAIL and one_list[0].recipes[0] == "init-head-to-code-prior"
    shuffled = [rng.sample(codes, 20) for _ in truth]  # personal lists, but no better than popularity
    warn = [f for f in probe_next_visit(truth, shuffled, train) if f.severity >= Severity.WARN]
    assert warn and warn[0].severity == Severity.WARN
    own = [list(dict.fromkeys([*h, *popular]))[:20] for h in history]  # the history first: a real predictor
    ok = probe_next_visit(truth, own, train)
    assert ok[0].severity == Severity.OK and ok[0].evidence["gain_lower_bound_at_10"] > 0


def test_prior_bias_starts_the_head_at_the_code_log_odds():
    import math

    import torch

    from recipes.fixes import REGISTRY
    from recipes.fixes.base import Target
    from recipes.train.behrt_tasks import set_prior_bias
    from recipes.train.task import get_task

    head = torch.nn.Linear(4, 3)
    set_prior_bias(head, [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], smoothing=0.5)
    want = [math.log(s / (1 - s)) for s in (3.5 / 5, 1.5 / 5, 0.5 / 5)]
    assert torch.allclose(head.bias, torch.tensor(want), atol=1e-5)
    cfg = _config("behrt_nextvisit_small", "next_visit.prior_bias=false", "model.hidden_size=16",
                  "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=32")
    task = get_task(cfg["recipe"])
    model, _, info = task.build(cfg, None)
    assert float(model.classifier.bias.detach().abs().max()) == 0.0 and "head_bias" not in info
    changes = REGISTRY["init-head-to-code-prior"].on_config(cfg, Target(path=Path("."), kind="config", config=cfg))
    assert [(c.key, c.after) for c in changes] == [("next_visit.prior_bias", True)]
    model, tokenizer, info = task.build(cfg, None)
    from ehrdebug.codetok import code_token

    frequent = tokenizer.convert_tokens_to_ids(code_token(task.records(cfg, "train")[0]["next_visit_codes"][0]))
    assert "head_bias" in info and float(model.classifier.bias[frequent].detach()) > float(model.classifier.bias[0].detach())


def test_meds_built_records_are_checked_against_their_prediction_time(tmp_path):
    from datetime import datetime

    from ehrdebug.data.build import build_task
    from probes.leakage import probe_label_leakage
    from tests.test_data_meds import read_split, write_labels, write_root

    root = write_root(tmp_path / "meds")
    write_labels(root / "task_labels" / "readmission" / "0.parquet",
                 [(1, datetime(2020, 1, 12), True), (1, datetime(2021, 3, 5, 12), False),
                  (2, datetime(2019, 2, 2, 10), False)])
    build_task("codes", "meds", str(root), str(tmp_path / "out"), labels="readmission")
    records = [r for s in ("train", "validation", "test") for r in read_split(tmp_path / "out", s)]
    assert all("prediction_day" in r for r in records)
    ok = [f for f in probe_label_leakage(records) if f.evidence.get("records_compared")]
    assert ok and ok[0].severity == Severity.OK and ok[0].evidence["records_compared"] == len(records)
    uncut = [{**r, "codes": [*r["codes"], "ICD9CM/7802"], "days": [*r["days"], r["prediction_day"] + 3]} for r in records]
    assert _late(probe_label_leakage(uncut))[0].evidence["records_with_later_events"] == len(records)
