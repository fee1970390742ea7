"""model.task_prefix: T5 inputs at inference lacking the prefix used in training (seed 002).

Seed 002 trained with ``"medical diagnosis: "`` prepended; an input without it made T5 echo the input.
The expected prefix is ``config.task_prefix`` or the common word prefix of the training inputs; the
probe counts inference inputs lacking it and, given a model, measures how often the output changes
when the prefix is added (evidence that the model depends on it).
"""

from __future__ import annotations

import os
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity

PROBE = "model.task_prefix"


def common_prefix(texts: list[str]) -> str:
    """Longest word-level prefix shared by every text (``'medical diagnosis: Symptoms:'``)."""
    if not texts:
        return ""
    words = os.path.commonprefix([t.split() for t in texts])
    prefix = " ".join(words)
    return prefix + " " if prefix else ""


def task_prefix(
    inference_inputs: list[str],
    config: EhrDebugConfig | None = None,
    *,
    train_inputs: list[str] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    generation_kwargs: dict[str, Any] | None = None,
    max_examples: int = 4,
) -> list[Finding]:
    """Compare the inference inputs with the training prefix; optionally measure the output change."""
    cfg = config or EhrDebugConfig()
    trained = common_prefix(train_inputs) if train_inputs and len(train_inputs) > 1 else ""
    expected = cfg.task_prefix or trained.strip()
    evidence: dict[str, Any] = {"configured_prefix": cfg.task_prefix, "training_common_prefix": trained.strip(),
                                "n_inference": len(inference_inputs)}
    findings: list[Finding] = []
    if cfg.task_prefix and train_inputs:
        missing_train = [t for t in train_inputs if not t.startswith(cfg.task_prefix.strip())]
        if missing_train:
            evidence["training_without_prefix"] = round(len(missing_train) / len(train_inputs), 4)
            findings.append(Finding(PROBE, Severity.WARN,
                                    f"{len(missing_train)}/{len(train_inputs)} training inputs lack the configured prefix {cfg.task_prefix!r}",
                                    evidence, missing_train[:3], ["add-task-prefix"],
                                    rule="the configured task prefix must be on every training input"))
    if not expected:
        model_type = getattr(getattr(model, "config", None), "model_type", "")
        sev = Severity.INFO if model_type == "t5" else Severity.OK
        return findings or [Finding(PROBE, sev, "no task prefix configured or shared by the training inputs", evidence,
                                    rule="T5 is usually fine-tuned with a task prefix ('medical diagnosis: ') at training and inference")]
    lacking = [t for t in inference_inputs if not t.lstrip().startswith(expected.strip())]
    share = len(lacking) / len(inference_inputs) if inference_inputs else 0.0
    evidence.update({"expected_prefix": expected, "inference_without_prefix": round(share, 4)})
    examples: list[Any] = lacking[:3]
    if lacking and model is not None and tokenizer is not None:
        examples = _measure_change(model, tokenizer, lacking[:max_examples], expected, cfg, generation_kwargs, evidence)
    if share >= 0.5 and evidence.get("output_changed_with_prefix", 1.0) > 0:
        sev = Severity.FAIL
    elif share > 0:
        sev = Severity.WARN
    else:
        findings.append(Finding(PROBE, Severity.OK, f"every inference input starts with {expected!r}", evidence,
                                inference_inputs[:2], rule="inference inputs must carry the training prefix"))
        return findings
    changed = evidence.get("output_changed_with_prefix")
    findings.append(Finding(
        PROBE, sev,
        f"{len(lacking)}/{len(inference_inputs)} inference inputs lack the training prefix {expected!r}"
        + (f"; adding it changes {changed:.0%} of outputs" if changed is not None else ""),
        evidence, examples, ["add-task-prefix"],
        rule="warn when any inference input lacks the prefix, fail when half do (unless adding it measurably changes nothing)",
    ))
    return findings


def _measure_change(model: Any, tokenizer: Any, inputs: list[str], prefix: str, cfg: EhrDebugConfig,
                    generation_kwargs: dict[str, Any] | None, evidence: dict[str, Any]) -> list[dict[str, str]]:
    from probes.generation import generate_outputs

    without = generate_outputs(model, tokenizer, inputs, cfg, generation_kwargs)
    with_prefix = generate_outputs(model, tokenizer, [f"{prefix.strip()} {t}" for t in inputs], cfg, generation_kwargs)
    diff = [a != b for a, b in zip(without.texts, with_prefix.texts, strict=True)]
    evidence["output_changed_with_prefix"] = round(sum(diff) / len(diff), 4)
    return [{"input": t, "output_without_prefix": a, "output_with_prefix": b}
            for t, a, b in zip(inputs, without.texts, with_prefix.texts, strict=True)]
