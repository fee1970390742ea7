"""The zoo's code-model cases (seeds 001 and 004): BEHRT runs on the shipped codes records with one knob turned.

Each starts from a shipped healthy BEHRT config and turns what BEHRT ports get wrong: the original code's
-1 ignore index, a masking rate of 50%, [CLS]/[VS] picked as targets, no 80/10/10 replacement, an age
table too small for the patients, the death code left in the input, a learning rate too low to learn,
a next-visit head started at p=0.5 for every code (it collapses onto popularity), the last stay's
discharge codes kept in an input predicted 24 h into that stay.
The probes read the run's own batches (rebuilt through its collator), its model config, the records it
trained on and its saved test predictions (``recipes.zoo.code_evidence``).
"""

from __future__ import annotations

from recipes.zoo.case import Case
from recipes.zoo.code_data import prepare_leaky, prepare_palliative
from recipes.zoo.code_evidence import (
    classifier_findings,
    id_range_findings,
    kept_next_visit_findings,
    leakage_findings,
    mlm_batch_findings,
)
from recipes.zoo.code_leak_data import prepare_late_events

MLM = "behrt_mlm_small"
MORTALITY = "behrt_mortality_small"
NEXT_VISIT = "behrt_nextvisit_small"

# a few steps on a few hundred records: the batch probes need batches, not a trained model
TINY_MLM: tuple[str, ...] = (
    "data.max_train=192", "max_steps=6", "eval_every=6", "threads=1", "final_test=false", "keep_checkpoints=1",
    "num_log_samples=1", "max_minutes=3",
)
# mortality from scratch (no MLM run to start from) with a narrow encoder, so it learns in seconds
TINY_MORTALITY: tuple[str, ...] = (
    "init_from=null", "threads=1", "final_test=false", "keep_checkpoints=1", "num_log_samples=1", "max_minutes=3",
    "model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=64",
    "bootstrap=0", "baselines=false",
)
# the recipe's own rate; twelve epochs: the tiny encoder sits at the prior for ~5 epochs, then learns (AUROC ~0.85)
LEARNS: tuple[str, ...] = ("epochs=12", "eval_every=144", "lr=1e-3", "warmup_steps=10", "early_stopping.patience=null")

# the shipped next-visit recipe for four epochs (its validation recall has left popularity behind by then);
# the final test keeps each test patient's ranked codes (artifacts/evidence/predictions-test.jsonl)
NEXT_VISIT_SHORT: tuple[str, ...] = (
    "threads=1", "epochs=4", "eval_every=46", "early_stopping.patience=null", "keep_checkpoints=1",
    "num_log_samples=1", "max_minutes=4",
)

CODE_CASES: list[Case] = [
    Case(
        name="behrt-healthy-mlm",
        seed="001",
        failure="none: the shipped BEHRT masked-code pretraining",
        how="behrt_mlm_small as shipped (15% masking, 80/10/10, -100 labels, specials never targets), a few steps",
        probe="",
        fix="",
        config=MLM,
        overrides=TINY_MLM,
        notes={"probes": ("data.mlm_batch", "data.id_ranges")},
    ),
    Case(
        name="mlm-ignore-index-minus-one",
        seed="001",
        failure="BEHRT's original code marks non-target labels with -1; a transformers loss ignores only -100",
        how="mlm.ignore_index=-1: cross-entropy meets label -1 in the first step ('Target -1 is out of bounds')",
        probe="data.mlm_batch",
        fix="mlm-ignore-index",
        config=MLM,
        overrides=TINY_MLM + ("mlm.ignore_index=-1",),
        evidence=mlm_batch_findings,
        expect_crash=True,
    ),
    Case(
        name="mlm-masking-rate",
        seed="001",
        failure="half of every record masked: too little context left to predict from",
        how="mlm.probability=0.5",
        probe="data.mlm_batch",
        fix="mlm-masking-rate",
        config=MLM,
        overrides=TINY_MLM + ("mlm.probability=0.5",),
        evidence=mlm_batch_findings,
    ),
    Case(
        name="mlm-special-tokens-masked",
        seed="001",
        failure="[CLS] and visit separators [VS] picked as MLM targets: free accuracy on structure",
        how="mlm.mask_special_tokens=true (the special-tokens mask ignored)",
        probe="data.mlm_batch",
        fix="mlm-skip-special-tokens",
        config=MLM,
        overrides=TINY_MLM + ("mlm.mask_special_tokens=true",),
        evidence=mlm_batch_findings,
    ),
    Case(
        name="mlm-no-80-10-10",
        seed="001",
        failure="every target replaced by [MASK]: the encoder never sees real codes at target positions",
        how="mlm.mask_share=1.0 mlm.random_share=0.0",
        probe="data.mlm_batch",
        fix="mlm-80-10-10",
        config=MLM,
        overrides=TINY_MLM + ("mlm.mask_share=1.0", "mlm.random_share=0.0"),
        evidence=mlm_batch_findings,
    ),
    Case(
        name="age-table-too-small",
        seed="001",
        failure="an age table of 40 rows: every patient of 39 or older gets the same age embedding",
        how="model.age_vocab_size=40: ages are clamped onto row 39 (the shipped patients are 0-90)",
        probe="data.id_ranges",
        fix="grow-embedding-tables",
        config=MLM,
        overrides=TINY_MLM + ("model.age_vocab_size=40",),
        evidence=id_range_findings,
    ),
    Case(
        name="death-code-in-input",
        seed="004",
        failure="the death code (ICD-9 798.1) of the last stay left in the history that predicts death",
        how="the shipped codes records with 798.1 on the last visit of 80% of the patients who die",
        probe="data.label_leakage",
        fix="drop-outcome-codes",
        config=MORTALITY,
        overrides=TINY_MORTALITY + ("max_steps=4", "eval_every=4"),
        evidence=leakage_findings,
        prepare=prepare_leaky,
    ),
    Case(
        name="classifier-not-learning",
        seed="004",
        failure="AUROC 0.5 on mortality: the classifier gives everybody the prior",
        how="lr=1e-7 (the recipe's is 1e-3): the weights barely move in twelve epochs; the records carry a real "
            "risk marker (palliative care V66.7 in 60% of deaths, 5% of survivors) the healthy run learns",
        probe="metrics.classifier",
        fix="increase-learning-rate",
        config=MORTALITY,
        overrides=TINY_MORTALITY + LEARNS + ("lr=1e-7",),
        evidence=classifier_findings,
        prepare=prepare_palliative,
    ),
    Case(
        name="next-visit-popularity-collapse",
        seed="001",
        failure="next-visit BEHRT ranks the same most frequent codes first for every patient",
        how="next_visit.prior_bias=false: the head starts at p=0.5 for all ~230 codes; the first steps only push "
            "every code down and the encoder settles on one output for everybody (recall@k = the frequency baseline's)",
        probe="metrics.next_visit",
        fix="init-head-to-code-prior",
        config=NEXT_VISIT,
        overrides=NEXT_VISIT_SHORT + ("next_visit.prior_bias=false",),
        evidence=kept_next_visit_findings,
    ),
    Case(
        name="events-after-prediction-time",
        seed="004",
        failure="in-hospital mortality predicted 24 h into the last stay, from an input cut at the end of the record",
        how="the shipped records with the last stay's diagnoses (time-stamped at discharge, as MIMIC codes them) "
            "kept in the input, each event with its time and the record's prediction_time",
        probe="data.label_leakage",
        fix="cut-at-prediction-time",
        config=MORTALITY,
        overrides=TINY_MORTALITY + ("max_steps=4", "eval_every=4"),
        evidence=leakage_findings,
        prepare=prepare_late_events,
    ),
    Case(
        name="behrt-healthy-nextvisit",
        seed="001",
        failure="none: the shipped BEHRT next-visit recipe (head started at the code-frequency prior)",
        how="behrt_nextvisit_small as shipped, four epochs",
        probe="",
        fix="",
        config=NEXT_VISIT,
        overrides=NEXT_VISIT_SHORT,
        notes={"probes": ("metrics.next_visit",)},
    ),
    Case(
        name="behrt-healthy-mortality",
        seed="004",
        failure="none: BEHRT mortality on the shipped records with a real risk marker (palliative care V66.7)",
        how="the narrow encoder at the recipe's lr 1e-3 for twelve epochs, on the records with the palliative marker",
        probe="",
        fix="",
        config=MORTALITY,
        overrides=TINY_MORTALITY + LEARNS,
        prepare=prepare_palliative,
        notes={"probes": ("data.label_leakage", "metrics.classifier", "data.id_ranges")},
    ),
]

# the probe runners a healthy case is checked with (its evidence has no single probe)
EVIDENCE = {
    "data.mlm_batch": mlm_batch_findings,
    "data.id_ranges": id_range_findings,
    "data.label_leakage": leakage_findings,
    "metrics.classifier": classifier_findings,
    "metrics.next_visit": kept_next_visit_findings,
}
