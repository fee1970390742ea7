"""Config fixes for code-sequence models (BEHRT and the models on its layer): MLM batches, embedding tables,
outcome leakage, events after the prediction time, a learning rate too low to learn, a next-visit head
that starts far from the code prior.

Each fix edits the training config the next ``ehrdebug train`` reads; which keys hold the MLM settings,
the table sizes and the input exclusions is declared once below (``KEYS``), in the BEHRT tasks' schema.
Fixes that need figures (how large a table must be, which codes give the label away) measure them on the
run's own training records, the way the probe that fired did.
"""

from __future__ import annotations

import math
from typing import Any

from ehrdebug.errors import UserError
from recipes.fixes.base import Change, Fix, Target, get_key, set_key

# the config keys of the code-model tasks (recipes/train/behrt_tasks.py) each fix edits
KEYS = {
    "mlm_probability": "mlm.probability",
    "ignore_index": "mlm.ignore_index",
    "mask_special": "mlm.mask_special_tokens",
    "mask_share": "mlm.mask_share",
    "random_share": "mlm.random_share",
    "exclude_codes": "data.exclude_codes",
    "age_bucket": "age_bucket_years",
    "lr": "lr",
    "codes_dir": "data.codes_dir",
    "prior_bias": "next_visit.prior_bias",
}
CUT_DIR = "data-cut-at-prediction-time"  # under the fix's output folder: the user's records stay as they are
# encoder input -> config key of its table size
TABLES: dict[str, str] = {
    "age_ids": "model.age_vocab_size",
}
DEFAULT_TABLES = {"age_ids": 120}  # BehrtConfig's default when the key is null
STANDARD_RATE = 0.15
FINE_TUNE_LR = 1e-4  # a rate AdamW fine-tuning of a BERT-size encoder moves at
MAX_LR = 1e-3
TABLE_MARGIN = 1.1  # room above the largest id seen in training (test patients may be older)


_ABSENT = object()


def _require(cfg: dict[str, Any], name: str) -> str:
    key = KEYS[name]
    if get_key(cfg, key, _ABSENT) is _ABSENT:
        raise UserError(f"this config has no {key!r} key: the fix applies to the code-model (BEHRT) recipes")
    return key


def _ignore_index(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, _require(cfg, "ignore_index"), -100, changes, "label positions without a target carry -100, which the loss ignores")
    return changes


def _masking_rate(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, _require(cfg, "mlm_probability"), STANDARD_RATE, changes, "BERT/BEHRT mask 15% of the maskable codes")
    return changes


def _skip_special(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, _require(cfg, "mask_special"), False, changes, "[CLS], [VS] and padding are never targets")
    return changes


def _replacement(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, _require(cfg, "mask_share"), 0.8, changes, "80% of targets become [MASK]")
    set_key(cfg, _require(cfg, "random_share"), 0.1, changes, "10% a random code, 10% stay unchanged")
    return changes


def _training_records(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    from recipes.train.task import get_task

    return get_task(cfg["recipe"]).records(cfg, "train")


def needed_table_sizes(records: list[dict[str, Any]], age_bucket_years: float = 1.0) -> dict[str, int]:
    """Rows each table needs for these records, as ``ehrdebug.codetok.encode_record`` numbers them: age id =
    age // bucket; position id = visit number + 1 (0 is [CLS] and padding)."""
    ages = [float(a) for r in records for a in (r.get("ages") or []) if a is not None]
    visits = [len(set(r.get("visits") or [0])) for r in records]
    out = {"position_ids": max(visits, default=0) + 1}
    if ages:
        out["age_ids"] = int(max(ages) // age_bucket_years) + 1
    return out


def _grow_tables(cfg: dict[str, Any], target: Target) -> list[Change]:
    """Each table at least the largest id the training records need (with a margin), never smaller than now."""
    changes: list[Change] = []
    needed = needed_table_sizes(_training_records(cfg), float(get_key(cfg, KEYS["age_bucket"]) or 1.0))
    for name, key in TABLES.items():
        have = get_key(cfg, key, _ABSENT)
        want = needed.get(name)
        if want is None or have is _ABSENT:
            continue
        have = int(have or DEFAULT_TABLES.get(name, 0))
        size = max(have, int(math.ceil(want * TABLE_MARGIN)))
        if size > have:
            set_key(cfg, key, size, changes, f"the training records need ids up to {want - 1}")
    if not changes and all(get_key(cfg, k, _ABSENT) is _ABSENT for k in TABLES.values()):
        raise UserError("this config has no embedding table sizes (model.age_vocab_size, …): nothing to grow")
    return changes


def _drop_outcome(cfg: dict[str, Any], target: Target) -> list[Change]:
    """Measure which codes give the label away on the training records and exclude them from the input."""
    from probes.leakage import leaking_codes

    key = _require(cfg, "exclude_codes")
    codes = leaking_codes(_training_records(cfg))
    changes: list[Change] = []
    if codes:
        current = list(get_key(cfg, key) or [])
        set_key(cfg, key, current + [c for c in codes if c not in current], changes,
                "codes that record the outcome (positive rate ≥ 95% on the training records)")
    return changes


def _recipe_lr(cfg: dict[str, Any]) -> float | None:
    """The learning rate the recipe ships with (its schema default), when the config names a recipe."""
    try:
        from recipes.train.config import default_config

        value = default_config(cfg["recipe"]).get("lr") if cfg.get("recipe") else None
    except (UserError, KeyError, ImportError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _raise_lr(cfg: dict[str, Any], target: Target) -> list[Change]:
    """Tenfold steps until the rate reaches the recipe's own default (or ~1e-4 without one), never above 1e-3
    more than the default: a rate 10,000x too low is back where the recipe was tuned, not overshooting it."""
    changes: list[Change] = []
    lr = get_key(cfg, KEYS["lr"])
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise UserError("this config has no numeric lr to raise")
    floor = _recipe_lr(cfg) or FINE_TUNE_LR
    new = float(lr) * 10
    while new < floor * 0.99:
        new *= 10
    new = float(f"{min(new, max(MAX_LR, floor)):.3g}")
    if new > lr:
        set_key(cfg, KEYS["lr"], new, changes, f"tenfold steps up to the recipe's rate ({floor:g})")
    return changes


def _cut_at_prediction_time(cfg: dict[str, Any], target: Target) -> list[Change]:
    """A copy of the run's records with every event after its prediction time dropped (written under the fix's
    output folder; the original records are never touched), and ``data.codes_dir`` pointed at it."""
    import json
    from pathlib import Path

    from probes.leakage import cut_at_prediction
    from recipes.train.task import get_task

    key = _require(cfg, "codes_dir")
    source = get_task(cfg["recipe"]).codes_dir(cfg)
    splits = [p for p in (source / f"{s}.jsonl" for s in ("train", "validation", "test")) if p.is_file()]
    if not splits:
        raise UserError(f"{source} holds no {{train,validation,test}}.jsonl to cut")
    out = target.info.get("out_dir")
    dest = Path(out) / CUT_DIR if out else None
    cut_records = cut_events = 0
    for path in splits:
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record, dropped = cut_at_prediction(json.loads(line))
                cut_records += bool(dropped)
                cut_events += dropped
                rows.append(json.dumps(record) + "\n")
        if dest is not None:
            dest.mkdir(parents=True, exist_ok=True)
            (dest / path.name).write_text("".join(rows), encoding="utf-8")
    changes: list[Change] = []
    if cut_records:
        set_key(cfg, key, str(dest.resolve()) if dest else f"<fix output>/{CUT_DIR}", changes,
                f"{cut_events} events after the prediction time dropped from {cut_records} records")
    return changes


def _prior_bias(cfg: dict[str, Any], target: Target) -> list[Change]:
    changes: list[Change] = []
    set_key(cfg, _require(cfg, "prior_bias"), True, changes,
            "the head starts at each code's training log-odds and learns what the history adds")
    return changes


MLM_IGNORE_INDEX = Fix("mlm-ignore-index", ("data.mlm_batch",), "label positions without a target get -100",
                       on_config=_ignore_index)
MLM_MASKING_RATE = Fix("mlm-masking-rate", ("data.mlm_batch",), "mask 15% of the maskable codes", on_config=_masking_rate)
MLM_SKIP_SPECIAL = Fix("mlm-skip-special-tokens", ("data.mlm_batch",), "never pick special tokens or padding as targets",
                       on_config=_skip_special)
MLM_80_10_10 = Fix("mlm-80-10-10", ("data.mlm_batch",), "80% [MASK] / 10% random / 10% unchanged", on_config=_replacement)
GROW_TABLES = Fix("grow-embedding-tables", ("data.id_ranges",), "size the age/visit tables to the training records",
                  on_config=_grow_tables)
DROP_OUTCOME = Fix("drop-outcome-codes", ("data.label_leakage",), "exclude codes that give the label away from the input",
                   on_config=_drop_outcome)
INCREASE_LR = Fix("increase-learning-rate", ("metrics.classifier", "metrics.next_visit", "curves.stalled"),
                  "raise a learning rate too low to learn (tenfold steps up to the recipe's default)", on_config=_raise_lr)

CUT_AT_PREDICTION = Fix("cut-at-prediction-time", ("data.label_leakage",),
                        "drop the events after each record's prediction time (a cut copy of the records)",
                        on_config=_cut_at_prediction_time)
PRIOR_BIAS = Fix("init-head-to-code-prior", ("metrics.next_visit",),
                 "start the next-visit head's bias at the code-frequency prior", on_config=_prior_bias)

FIXES = (MLM_IGNORE_INDEX, MLM_MASKING_RATE, MLM_SKIP_SPECIAL, MLM_80_10_10, GROW_TABLES, DROP_OUTCOME, INCREASE_LR,
         CUT_AT_PREDICTION, PRIOR_BIAS)
