"""run_model_probes: every model/generation probe that applies, kept fast enough for each evaluation.

Called by the doctor and by the training recipes' evaluation callback. Generation runs once and feeds
both the teacher-forced comparison and the degeneration checks.
"""

from __future__ import annotations

from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding, Severity
from probes.attribution import attribution
from probes.degeneration import degeneration
from probes.embeddings import new_embeddings
from probes.generation import generate_outputs, tf_vs_sampling
from probes.runtime import gather_mamba_facts, mamba_fast_path
from probes.special_tokens import end_token_ids, example_pair, special_token_probability
from probes.task_prefix import task_prefix
from probes.trainable import trainable


def run_model_probes(
    model: Any,
    tokenizer: Any,
    examples: list[dict[str, Any]],
    config: EhrDebugConfig | None,
    *,
    base_vocab_size: int | None = None,
    reference_state: dict[str, Any] | None = None,
    generation_kwargs: dict[str, Any] | None = None,
    code_vocabulary: set[str] | None = None,
    max_examples: int = 6,
    with_attribution: bool = True,
    decoding_source: str = "",
    decoder_prompt: bool = False,
) -> list[Finding]:
    """Run trainable, new_embeddings, special_token_probability, tf_vs_sampling, degeneration, task_prefix,
    runtime (Mamba) and attribution on up to ``max_examples`` examples; a probe that crashes becomes an ``info``
    finding. ``decoding_source`` says where ``generation_kwargs`` came from (stated in the evidence);
    ``decoder_prompt``: the decoder writes the whole line and generates from the prompt as its prefix."""
    cfg = config or EhrDebugConfig()
    sample = list(examples[:max_examples])
    findings: list[Finding] = []

    def run(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # a probe must not take the evaluation down with it
            findings.append(Finding(name, Severity.INFO, f"probe could not run: {type(exc).__name__}: {exc}"))
            return None
        if isinstance(result, list):
            findings.extend(result)
        return result

    run("model.trainable", trainable, model, base_vocab_size, tokenizer=tokenizer)
    run("model.new_embeddings", new_embeddings, model, base_vocab_size, reference_state=reference_state, tokenizer=tokenizer)
    if gather_mamba_facts(model).is_mamba:  # measured: training steps at the run's length (issue 12)
        seq_len = min(int(cfg.max_length or 256), 512)
        run("runtime.mamba_fast_path", mamba_fast_path, model, time_it=True, seq_len=seq_len, forward=False)
    if not sample:
        return findings
    run("model.special_token_probability", special_token_probability, model, tokenizer, sample, cfg, base_vocab_size=base_vocab_size,
        generation_kwargs=generation_kwargs)
    prompts = [example_pair(ex, cfg)[0] for ex in sample]
    gen = run("generation.tf_vs_sampling", generate_outputs, model, tokenizer, prompts, cfg, generation_kwargs,
              decoder_prompt=decoder_prompt)
    if gen is not None:
        run("generation.tf_vs_sampling", tf_vs_sampling, model, tokenizer, sample, cfg, generation_kwargs=generation_kwargs,
            code_vocabulary=code_vocabulary, generated=gen, max_examples=max_examples, decoding_source=decoding_source)
        end_id, _ = end_token_ids(tokenizer, cfg)
        run("generation.degeneration", degeneration, gen.prompts, gen.texts, output_ids=gen.ids,
            pad_token_id=tokenizer.pad_token_id, end_token_id=end_id, ended=gen.ended,
            stopped_on_foreign_eos=gen.stopped_on_foreign_eos,
            echo_recipes=["add-task-prefix"] if getattr(model.config, "model_type", "") == "t5" else [])
    if cfg.task_prefix or getattr(model.config, "model_type", "") == "t5":
        run("model.task_prefix", task_prefix, prompts, cfg, model=model, tokenizer=tokenizer,
            generation_kwargs=generation_kwargs, max_examples=2)
    if with_attribution:
        run("attribution.integrated_gradients", attribution, model, tokenizer, sample, cfg, max_examples=1, n_steps=12)
    return findings
