"""The cases of the bug zoo: seeds 000 (BART EHR generation) and 002 (T5 diagnosis), plus a healthy run.

Every case starts from the shipped *healthy* small-tier config and turns exactly the knob the field
report turned, then trains for seconds. What the probe sees is the run's real checkpoint, tokenizer,
curves, batches and generations.
"""

from __future__ import annotations

from recipes.zoo.case import Case
from recipes.zoo.causal_cases import CAUSAL_CASES
from recipes.zoo.code_cases import CODE_CASES
from recipes.zoo.mamba_cases import MAMBA_CASES

HEALTHY_BART = "bart_ehrgen_small"
T5 = "t5_diagnosis_small"

# shared by every BART case: a few hundred records, short evaluations, no test pass
TINY_BART: tuple[str, ...] = (
    "data.max_train=192", "num_eval_generations=8", "num_log_samples=2", "final_test=false", "keep_checkpoints=1",
    "max_minutes=5", "add_code_tokens=250", "max_length=192", "decoder_prompt=false", "threads=1",
)
TINY_T5: tuple[str, ...] = (
    "num_eval_generations=12", "num_log_samples=2", "final_test=false", "keep_checkpoints=1", "max_minutes=5",
    "task_prefix='medical diagnosis: '", "threads=1",
    "constrain_to_labels=false",  # free decoding: an echo or all-PAD answer must be possible to be seen
)

# seed 002's fresh run: labels padded to a long max_target_length with the pad id (a short diagnosis
# then leaves ~95% of label positions PAD), a short run at the full rate with no warmup, and the seed's
# plain decoding (greedy, no penalties: no_repeat_ngram_size would forbid a second PAD by construction).
# The shared decoder input PAD -> PAD is learned before anything else: PAD is the first token (p~0.92).
PAD_LABELS: tuple[str, ...] = (
    "label_pad=pad", "pad_to_max_length=true", "max_target_length=128", "max_steps=20", "warmup_steps=0",
    "eval_every=20", "generation.num_beams=1", "generation.repetition_penalty=1.0", "generation.no_repeat_ngram_size=0",
)

# enough training for the tiny BART to learn the grammar (about 360 steps)
HEALTHY_TRAINING: tuple[str, ...] = ("batch_size=8", "lr=2e-3", "epochs=15", "eval_every=60")

CASES_LIST: list[Case] = [
    Case(
        name="healthy",
        seed="000",
        failure="none: the fixed seed-000 setup",
        how="the shipped healthy BART config (structural tokens registered, mean init, code tokens, EOS blocked, early stopping)",
        probe="",
        fix="",
        config=HEALTHY_BART,
        overrides=TINY_BART + HEALTHY_TRAINING + ("generation.repetition_penalty=1.3",),
    ),
    Case(
        name="fragmented-structural-token",
        seed="000",
        failure="<demo> is not a registered token and splits into 'Ġ<', 'dem', 'o', '>'",
        how="special_tokens without <demo> (as in the seed's first run)",
        probe="tokenizer.structural",
        fix="register-structural-tokens",
        config=HEALTHY_BART,
        overrides=TINY_BART + ("special_tokens=['<v>', '<\\v>', '<END>']", "max_steps=4"),
    ),
    Case(
        name="random-new-embeddings",
        seed="000",
        failure="resize_token_embeddings left the new rows random; <v> gets p=0.000045",
        how="new_token_init=random (N(0, 0.02) rows next to trained ones), a few steps",
        probe="model.new_embeddings",
        fix="init-new-embeddings-mean",
        config=HEALTHY_BART,
        overrides=TINY_BART + ("new_token_init=random", "max_steps=4"),
    ),
    Case(
        name="memorization",
        seed="000",
        failure="training loss 2.3 -> 0.0004 over 30 epochs: memorised, validation loss rising",
        how="16 training records, 45 epochs at a high learning rate, no early stopping",
        probe="curves.overfitting",
        fix="early-stopping",
        config=HEALTHY_BART,
        overrides=TINY_BART + ("data.max_train=16", "batch_size=8", "epochs=45", "lr=3e-3", "warmup_steps=0", "eval_every=10",
                               "early_stopping.patience=null", "log_every=2", "num_eval_generations=2",
                               "generation.max_new_tokens=48"),
    ),
    Case(
        name="icd-fragmentation",
        seed="000",
        failure="codes split into pieces: V3001 -> 'V', '300', '1'; 250.00 -> '250', '.', '00'",
        how="add_code_tokens=0: codes left to the general-English BPE",
        probe="tokenizer.codes",
        fix="add-code-tokens",
        config=HEALTHY_BART,
        overrides=TINY_BART + ("add_code_tokens=0", "max_steps=4"),
    ),
    Case(
        name="eos-dominance",
        seed="000",
        failure="BART's pretrained EOS takes 96.8% after <demo>; generation stops before any visit",
        how="generation ends on the model's own </s> (eos unset, pretrained EOS not blocked) after a short run",
        probe="generation.degeneration",
        fix="block-pretrained-eos",
        config=HEALTHY_BART,
        overrides=TINY_BART + ("generation.eos=null", "generation.block_pretrained_eos=false", "max_steps=6"),
    ),
    Case(
        name="collator-string-columns",
        seed="002",
        failure="ValueError: Unable to create tensor ... (`input` in this case) from DataCollatorForSeq2Seq",
        how="drop_string_columns=false: the raw input/output strings stay in every feature",
        probe="data.collator",
        fix="remove-string-columns",
        config=T5,
        overrides=TINY_T5 + ("drop_string_columns=false", "max_steps=4"),
        expect_crash=True,
    ),
    Case(
        name="missing-t5-prefix",
        seed="002",
        failure="T5 trained with 'medical diagnosis: ' but asked without it: it echoes the input",
        how="task_prefix set for training, inference_prefix empty",
        probe="model.task_prefix",
        fix="add-task-prefix",
        config=T5,
        overrides=TINY_T5 + ("inference_prefix=''", "max_steps=8"),
    ),
    Case(
        name="all-pad-generation",
        seed="002",
        failure="generate() returns [0, 0, 0, ...]: only PAD",
        how="labels padded to max_target_length=128 with the pad id (label_pad=pad), 20 steps, greedy decoding",
        probe="generation.degeneration",
        fix="mask-label-padding",
        config=T5,
        overrides=TINY_T5 + PAD_LABELS,
        match="all-PAD output",
    ),
    Case(
        name="labels-padded-without-mask",
        seed="002",
        failure="labels hold the pad id instead of -100, so padding carries most of the loss",
        how="label_pad=pad with padding to max length (the all-PAD run: the same broken and fixed runs)",
        probe="data.collator",
        fix="mask-label-padding",
        config=T5,
        overrides=TINY_T5 + PAD_LABELS,
    ),
    Case(
        name="repetition-loop",
        seed="002",
        failure="'Morbus Morbus Morbus ...': the same token over and over (here a code: 'V5867 V5867 V5867')",
        how="the healthy EHR run decoded greedily without any repetition penalty",
        probe="generation.degeneration",
        fix="anti-repetition-decoding",
        config=HEALTHY_BART,
        overrides=TINY_BART + HEALTHY_TRAINING + ("generation.do_sample=false",),  # greedy, as seed 002 decoded
    ),
    Case(
        name="constant-output",
        seed="002",
        failure="'True' for every input: the model ignores the input",
        how="the healthy T5 setup stopped after 30 steps (max_steps=30): it has learned the label prior, not yet "
            "to read the input, and gives one string for every vignette",
        probe="generation.degeneration",
        fix="train-longer",  # lifts the step cap: the configured epochs teach it to read the vignette
        config=T5,
        overrides=TINY_T5 + ("max_steps=30", "eval_every=30"),
        match="same output for every input",
    ),
]

CASES_LIST += CODE_CASES  # BEHRT (seeds 001, 004): recipes/zoo/code_cases.py
CASES_LIST += CAUSAL_CASES  # causal-LM coding (seed 003): recipes/zoo/causal_cases.py
CASES_LIST += MAMBA_CASES  # EHRMamba (seed 004): recipes/zoo/mamba_cases.py

CASES: dict[str, Case] = {case.name: case for case in CASES_LIST}
