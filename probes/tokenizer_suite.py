"""The tokenizer probes as one call, for ``check tokenizer``, ``doctor`` and the TUI.

One batched pass over every text gives the lengths; the other probes share one encoding of the first
``sample_size`` texts. Structural tokens come from the config, or are found in the data when none are
configured (markup such as ``<demo>`` that appears in many sequences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding
from ehrdebug.tokenizers import as_handle
from probes.tokenizer_codes import probe_codes
from probes.tokenizer_common import SAMPLE_SIZE, plain_backend, tokenize_data
from probes.tokenizer_roundtrip import probe_lengths, probe_roundtrip
from probes.tokenizer_structural import find_structural_tokens, probe_structural


def run_tokenizer_probes(
    tokenizer: Any,
    texts: Sequence[str],
    config: EhrDebugConfig | None = None,
    *,
    targets: Sequence[str] | None = None,
    sample_size: int = SAMPLE_SIZE,
) -> list[Finding]:
    """Structural, codes, round-trip and length findings for ``tokenizer`` on ``texts``.

    ``tokenizer`` may be a ``TokenizerHandle``, a path or hub id, a transformers tokenizer with a fast
    backend, or a ``tokenizers.Tokenizer``. For seq2seq data pass the decoder side as ``targets``: they
    are probed with the inputs, but their lengths are judged against ``max_target_length`` (the decoder's
    limit), not the encoder's ``max_length``.
    """
    config = config or EhrDebugConfig()
    tok = as_handle(tokenizer)
    tok = replace(tok, backend=plain_backend(tok))  # a saved truncation/padding setting would distort every figure
    data = tokenize_data(tok, [*texts, *(targets or [])], sample_size=sample_size, prefix="" if targets else config.task_prefix)
    structural = list(config.structural_tokens)
    source = "configured"
    if not structural:
        structural = find_structural_tokens(data.sample)
        source = "found in the data"
    findings = probe_structural(tok, structural, data.sample, source=source)
    findings += probe_codes(tok, data, config)
    findings += probe_roundtrip(tok, data, config)
    if not targets:
        return findings + probe_lengths(tok, data, config, structural)
    sides = (("inputs", texts, config.task_prefix, config.max_length), ("targets", targets, "", config.max_target_length))
    for side, side_texts, prefix, limit in sides:
        side_data = tokenize_data(tok, side_texts, sample_size=sample_size, prefix=prefix)
        for finding in probe_lengths(tok, side_data, replace(config, max_length=limit), structural):
            finding.title = f"{side}: {finding.title}"
            finding.subject = side
            findings.append(finding)
    return findings
