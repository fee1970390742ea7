"""What a training run records about itself, so the doctor probes it the way the run trains and generates.

A run's ``run.json`` holds its training config: the decoding settings (``generation``: end token, blocked
pretrained EOS, beams, penalties), the inference prefix (``inference_prefix``/``task_prefix``), whether the
decoder writes the whole line (``decoder_prompt``), how features are padded and collated (``label_pad``,
``pad_to_max_length``, ``drop_string_columns``), and ``tokens.base_vocab_size``. ``ehrdebug.toml`` beside it holds
the probe config (structural tokens, fields, lengths). Everything here reads those records; nothing imports the
recipes that wrote them, so any run that records the same keys is probed the same way.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.findings import Finding

DOCTOR_GENERATIONS = 32  # prompts the doctor generates on: enough for a +-15-point 95% interval on validity


@dataclass
class RunRecord:
    """The recorded settings of one run (empty for an HF output dir or a bare checkpoint)."""

    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def generation(self) -> dict[str, Any] | None:
        g = self.config.get("generation")
        return g if isinstance(g, dict) else None

    @property
    def input_prefix(self) -> str:
        """What the run puts before every input at inference (its training prefix unless it set another)."""
        inference = self.config.get("inference_prefix")
        return str(inference if inference is not None else self.config.get("task_prefix") or "")

    @property
    def prompt_format(self) -> dict[str, Any] | None:
        """How the run writes a record's prompt and response at inference (run.json ``prompt_format``: ``prompt``
        with ``{instruction}``/``{input}`` slots, ``response`` with ``{target}``/``{label}``, the record fields,
        ``default_instruction``); None when the model reads the record's text as it is."""
        fmt = self.info.get("prompt_format")
        return fmt if isinstance(fmt, dict) and isinstance(fmt.get("prompt"), str) else None

    @property
    def decoder_writes_prompt(self) -> bool:
        return bool(self.config.get("decoder_prompt"))

    @property
    def eval_split(self) -> str:
        data = self.config.get("data")
        split = data.get("eval_split") if isinstance(data, dict) else None
        return str(split or "validation")

    def base_vocab_size(self) -> int | None:
        """Rows the base vocabulary had: what the run recorded, else the vocab_size of the base it names."""
        tokens = self.info.get("tokens")
        size = tokens.get("base_vocab_size") if isinstance(tokens, dict) else None
        if isinstance(size, int) and not isinstance(size, bool):
            return size
        base = self.base_dir()
        try:
            size = json.loads((base / "config.json").read_text(encoding="utf-8")).get("vocab_size") if base else None
        except (OSError, ValueError, AttributeError):
            return None
        return int(size) if isinstance(size, int) else None

    def base_dir(self) -> Path | None:
        base = self.info.get("base_model") or self.config.get("base")
        if not isinstance(base, str):
            return None
        for candidate in (Path(os.path.expanduser(base)), self.path / base, _shipped(base)):
            if candidate is not None and candidate.is_dir():
                return candidate
        return None

    def code_vocabulary(self, sources: dict[str, str]) -> set[str] | None:
        """The data's code list: the file the run names, else ``codes.txt`` beside its training data."""
        data = self.info.get("data")
        named = data.get("codes") if isinstance(data, dict) else None
        candidates = [Path(named)] if isinstance(named, str) else []
        candidates += [Path(p).parent / "codes.txt" for p in sources.values()]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def _shipped(name: str) -> Path | None:
    """A ``sample_data/...`` path resolves under the installed project whatever the current folder."""
    try:
        from ehrdebug.data.sample import resolve_data_path
    except ImportError:
        return None
    try:
        return Path(resolve_data_path(name))
    except Exception:  # noqa: BLE001 - an unresolvable name simply is not shipped data
        return None


def read_run(path: Path, info: dict[str, Any] | None) -> RunRecord:
    """The record of the run at ``path`` from its already-read ``run.json`` (``info``; None for none)."""
    info = info if isinstance(info, dict) else {}
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    return RunRecord(path=path, info=info, config=config)


_SLOT = re.compile(r"\{(instruction|input|target|label)\}")


def _fill(template: str, values: dict[str, str]) -> str:
    """``template`` with its slots filled in one pass (a note that itself contains ``{input}`` stays as it is)."""
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def formatted(fmt: dict[str, Any], r: dict[str, Any], text: str, target: str) -> dict[str, Any]:
    """One record with its prompt (``text``) and response (``target``) written as the run's ``prompt_format`` says."""

    def field_(key: str, default: str) -> str:
        value = r.get(str(fmt.get(key) or default))
        return "" if value is None else str(value)

    values = {"instruction": field_("instruction_field", "instruction") or str(fmt.get("default_instruction") or ""),
              "input": field_("input_field", text), "target": field_("target_field", target),
              "label": field_("label_field", "label")}  # fmt: skip
    r = dict(r)
    r[text] = _fill(fmt["prompt"], values)
    if isinstance(fmt.get("response"), str):
        r[target] = _fill(fmt["response"], values)
    return r


def probe_examples(record: RunRecord, records: list[dict[str, Any]], cfg: EhrDebugConfig) -> list[dict[str, Any]]:
    """Held-out examples as the run's model sees them: written in its prompt format (its template around the
    instruction and the note), its inference prefix before the input, and the whole line as the target when its
    decoder writes the prompt too."""
    text, target = cfg.text_field or "prompt", cfg.target_field or "target"
    prefix = record.input_prefix
    fmt = record.prompt_format
    out = []
    for r in records:
        r = formatted(fmt, r, text, target) if fmt is not None else dict(r)
        for key in (text, "input", "prompt"):
            if prefix and isinstance(r.get(key), str):
                r[key] = prefix + r[key]
                break
        if record.decoder_writes_prompt and isinstance(r.get(text), str) and isinstance(r.get(target), str):
            r[target] = r.get("text") if isinstance(r.get("text"), str) else f"{r[text]} {r[target]}"
        out.append(r)
    return out


def model_findings(model: Any, tokenizer: Any, record: RunRecord, examples: list[dict[str, Any]], cfg: EhrDebugConfig,
                   sources: dict[str, str]) -> list[Finding]:
    """The model suite with the run's own decoding, prefix, base vocabulary and code list."""
    from ehrdebug.decoding import generate_kwargs
    from probes.model_suite import run_model_probes

    settings = record.generation
    kwargs = generate_kwargs(tokenizer, settings) if settings and tokenizer is not None else None
    findings = run_model_probes(
        model, tokenizer, probe_examples(record, examples, cfg) if tokenizer is not None else [], cfg,
        base_vocab_size=record.base_vocab_size(), generation_kwargs=kwargs, reference_state=reference_state(record, model),
        code_vocabulary=record.code_vocabulary(sources), max_examples=DOCTOR_GENERATIONS,
        decoding_source="the run's config (run.json generation)" if kwargs else "the checkpoint's generation_config",
        decoder_prompt=record.decoder_writes_prompt,
    )
    return findings


def reference_state(record: RunRecord, model: Any) -> dict[str, Any] | None:
    """The embeddings the run started from: its base's rows plus the added rows it recorded before training
    (``ehrdebug.initial_rows``), keyed like ``model``'s own parameters; None when the run recorded none."""
    import torch

    from ehrdebug.initial_rows import read_initial_rows
    from ehrdebug.loading import load_model

    recorded = read_initial_rows(record.path)
    base_dir = record.base_dir()
    if recorded is None or base_dir is None:
        return None
    n_base, rows = recorded
    base_model, _ = load_model(base_dir)
    names: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), name)  # a tied weight goes by its first name, as the probe looks it up
    state: dict[str, Any] = {}
    pairs = [("input", model.get_input_embeddings(), base_model.get_input_embeddings())]
    if "output" in rows:
        pairs.append(("output", model.get_output_embeddings(), base_model.get_output_embeddings()))
    for key, current, base in pairs:
        weight = getattr(current, "weight", None)
        base_w = getattr(base, "weight", None)
        if weight is None or base_w is None or id(weight) not in names or base_w.shape[0] < n_base:
            continue
        full = torch.cat([base_w.detach().float()[:n_base], rows[key].float()])
        if full.shape == weight.shape:
            state[names[id(weight)]] = full
    return state or None


def collator_findings(record: RunRecord, model: Any, tokenizer: Any, records: list[dict[str, Any]],
                      cfg: EhrDebugConfig) -> list[Finding]:
    """``data.collator`` on features built and collated with the settings the run recorded (label padding,
    padding to max length, string columns kept or dropped), for encoder-decoder models."""
    from transformers import DataCollatorForSeq2Seq

    from probes.data_collator import probe_collator
    from probes.data_suite import build_features

    c = record.config
    padded = bool(c.get("pad_to_max_length"))
    sample = probe_examples(record, records[:32], cfg)  # what the run's encoder and decoder see
    feats, _, _ = build_features(sample, tokenizer, "seq2seq", input_field=cfg.text_field or None,
                                 target_field=cfg.target_field or None, max_length=int(c.get("max_length") or cfg.max_length),
                                 max_target_length=int(c.get("max_target_length") or cfg.max_target_length),
                                 padding="max_length" if padded else "none")
    masked = c.get("label_pad", -100) == -100
    for feat, raw in zip(feats, sample, strict=False):
        if padded and masked:
            feat["labels"] = [-100 if i == tokenizer.pad_token_id else i for i in feat["labels"]]
        if c.get("drop_string_columns") is False:
            feat.update({k: v for k, v in raw.items() if isinstance(v, str)})
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100 if masked else tokenizer.pad_token_id,
                                      padding=True)
    return probe_collator(feats, tokenizer, "seq2seq", collator=collator, collator_name=type(collator).__name__,
                          decoder_start_token_id=getattr(model.config, "decoder_start_token_id", None),
                          subject=f"run {record.path.name}")
