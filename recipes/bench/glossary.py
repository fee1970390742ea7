"""What each metric a run reports measures, in one line, for the markdown summary read off the pod alone.

Keyed by the metric's name without its split prefix (``test_``/``eval_``); a ``frequency_`` infix names the
next-visit frequency baseline's figure of the same metric. A metric not listed here is still shown, with
no explanation (the summary never hides a figure).
"""

from __future__ import annotations

#: metric name (no split prefix) -> what it measures
MEANINGS: dict[str, str] = {
    "auroc": "area under the ROC curve (0.5 = chance, 1 = perfect ranking)",
    "auprc": "area under the precision-recall curve (chance = prevalence)",
    "f1": "F1 at the threshold chosen on validation",
    "brier": "mean squared error of the predicted probability (lower is better)",
    "threshold": "decision threshold chosen on validation",
    "prevalence": "share of positive labels in the split",
    "loss": "mean loss of the model on the split (lower is better)",
    "aps": "micro average precision over every code of the next visit",
    "micro_auroc": "micro-averaged AUROC over every (record, code) pair",
    "recall_at_10": "share of the next visit's codes among the 10 highest-scored",
    "recall_at_20": "share of the next visit's codes among the 20 highest-scored",
    "mlm_accuracy": "accuracy of the masked-code predictions",
    "mlm_loss": "cross-entropy of the masked-code predictions (lower is better)",
    "masked": "masked positions scored",
    "perplexity": "exp of the per-token cross-entropy (lower is better; 1 = certain)",
    "next_token_accuracy": "accuracy of the next-code predictions",
    "tokens": "tokens scored",
    "structural_validity": "share of generated records that parse as `<demo> <v> … <\\v> … <END>`",
    "valid_code_rate": "share of generated codes that are real codes of the vocabulary",
    "codes_generated": "codes generated in all",
    "p_visit_after_demo": "mean probability of opening a visit right after `<demo>` (should approach 1)",
    "p_eos_after_demo": "mean probability of stopping right after `<demo>` (should approach 0)",
    "accuracy": "share of generated answers equal to the reference",
    "empty_rate": "share of empty generated answers (lower is better)",
    "repetition_rate": "share of generated answers that repeat themselves (lower is better)",
    "echo_rate": "share of generated answers that only echo the input (lower is better)",
    "strict_accuracy": "share of answers whose code set equals the reference exactly",
    "format_validity": "share of answers in the expected output format",
    "code_precision": "share of generated codes that are in the reference",
    "code_recall": "share of reference codes that were generated",
    "code_f1": "harmonic mean of code precision and recall",
}

#: the figures of a binary risk model (one probability per record): what the benchmark table compares
BINARY = ("test_auroc", "test_auprc", "test_f1")


def bare(name: str) -> str:
    """``test_recall_at_10`` -> ``recall_at_10``."""
    for prefix in ("test_", "eval_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def meaning(name: str) -> str:
    """One line on what ``name`` measures ('' when unknown)."""
    key = bare(name)
    if key.startswith("frequency_"):
        inner = MEANINGS.get(key[len("frequency_") :], "")
        return f"the code-frequency baseline's {inner}" if inner else "the code-frequency baseline's figure"
    return MEANINGS.get(key, "")
