"""Orchestration of the data probes for ``check data``, ``check collator`` and ``doctor``.

Inputs may be paths (CSV/JSONL/Parquet/lines via ``ehrdebug.io.tables``), lists of dicts, or a
``datasets.Dataset`` (anything iterable of mappings). Raw text is tokenized the way typical scripts do
(seed 002's ``tokenize``; alpaca-lora's ``generate_and_tokenize_prompt`` for causal SFT); files that
already hold ``input_ids`` are fed to the collator exactly as they are, stray string columns included.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from itertools import islice
from typing import Any

from ehrdebug.config import EhrDebugConfig
from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Severity
from probes.data_coverage import TrainingPlan, find_training_args, plan_from_mapping, probe_coverage
from probes.data_labels import probe_labels
from probes.data_split import probe_split

TARGET_FIELD_GUESSES = ("output", "target", "response", "answer", "completion", "summary", "label_text")
TOKEN_COLUMNS = ("input_ids", "attention_mask", "labels", "decoder_input_ids", "token_type_ids", "special_tokens_mask")
Source = str | os.PathLike | Sequence[Mapping[str, Any]] | Any


def load_split(source: Source, limit: int | None = 200_000) -> list[dict[str, Any]]:
    """Records of one split from a path, a list of dicts, or a datasets.Dataset."""
    if isinstance(source, (str, os.PathLike)):
        from ehrdebug.io.tables import detect_format, read_records

        path = os.fspath(source)
        rows = read_records(path, limit=limit)
        if detect_format(path) == "csv":
            rows = [{k: _parse_list(k, v) for k, v in r.items()} for r in rows]
        return rows
    rows = list(islice(iter(source), limit)) if limit else list(source)
    if rows and not isinstance(rows[0], Mapping):
        raise UserError(f"expected records (mappings), got {type(rows[0]).__name__}")
    return [dict(r) for r in rows]


def _parse_list(key: str, value: Any) -> Any:
    """CSV written by pandas holds token lists as text like "[1, 2, 3]"."""
    if key in TOKEN_COLUMNS and isinstance(value, str) and value.startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def count_records(source: Source, loaded: int, limit: int | None) -> int:
    """The exact number of training examples (streams the file when the sample was capped)."""
    if isinstance(source, (str, os.PathLike)):
        if limit is not None and loaded >= limit:
            from ehrdebug.io.tables import iter_records

            return sum(1 for _ in iter_records(os.fspath(source)))
        return loaded
    return len(source) if hasattr(source, "__len__") else loaded


def read_plan(path: str | None, base: TrainingPlan | None = None) -> TrainingPlan | None:
    """A TrainingPlan from an HF TrainingArguments JSON or a run.json; None when no path."""
    if not path:
        return base
    from ehrdebug.errors import require_file

    if os.path.isdir(path):  # a run directory or an HF output dir
        hit = next((os.path.join(path, n) for n in ("run.json", "training_args.json") if os.path.isfile(os.path.join(path, n))), None)
        if hit is None:
            raise UserError(f"{path} holds neither run.json nor training_args.json")
        path = hit
    require_file(path, "training-args file")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8 (HF's pickled training_args.bin)
        hint = "; HF's training_args.bin is a pickle: pass its JSON (args.to_json_string())" if path.endswith(".bin") else ""
        raise UserError(f"{path}: not a JSON file of training arguments ({exc}){hint}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of training arguments")
    if not find_training_args(data):
        raise UserError(f"{path}: no training arguments found (per_device_train_batch_size, gradient_accumulation_steps, …)")
    return plan_from_mapping(data, base)


def run_data_probes(
    train: Source,
    validation: Source | None = None,
    test: Source | None = None,
    *,
    config: EhrDebugConfig | None = None,
    patient_field: str | None = None,
    label_field: str | None = None,
    text_field: str | None = None,
    plan: TrainingPlan | Mapping[str, Any] | str | None = None,
    limit: int | None = 200_000,
    subject: str = "",
    target_field: str | None = None,
    train_examples: int | None = None,
) -> list[Finding]:
    """data.split, data.labels and data.coverage over the given splits (for ``check data`` and ``doctor``);
    ``train_examples``: the rows training really built from the records (a run records it), for coverage."""
    cfg = config or EhrDebugConfig()
    splits: dict[str, list[dict[str, Any]]] = {"train": load_split(train, limit)}
    for name, src in (("validation", validation), ("test", test)):
        if src is not None:
            splits[name] = load_split(src, limit)
    findings = probe_split(splits, patient_field=patient_field or cfg.patient_field or None,
                           text_field=text_field or cfg.text_field or None,
                           label_field=label_field or cfg.label_field or None, subject=subject,
                           target_field=target_field or cfg.target_field or None)
    findings += probe_labels(splits, label_field=label_field or cfg.label_field or None,
                             minority_share=cfg.threshold("minority_share"), subject=subject)
    if isinstance(plan, str):
        plan = read_plan(plan)
    elif isinstance(plan, Mapping):
        plan = plan_from_mapping(dict(plan))
    if plan is None:
        findings.append(Finding("data.coverage", Severity.OK,
                                "coverage not computed: no training arguments (pass --training-args or --per-device-batch)",
                                evidence={"train_samples": len(splits["train"])}, subject=subject))
    else:
        n = train_examples if train_examples is not None else count_records(train, len(splits["train"]), limit)
        findings += probe_coverage(n, plan, subject=subject)
    return findings


SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".jsonl.gz", ".csv.gz")


def data_sources(data: Any, root: str = ".") -> dict[str, str]:
    """Split files named by a run's ``data`` entry: a mapping, a list of files, one file or a folder."""
    def here(p: Any) -> str:
        return os.path.normpath(os.path.join(root, os.path.expanduser(str(p))))

    found: dict[str, str] = {}
    if isinstance(data, Mapping):
        for split, aliases in SPLIT_NAMES.items():
            for key in (*aliases, *(f"{a}_file" for a in aliases)):
                if isinstance(data.get(key), str) and os.path.isfile(here(data[key])):
                    found.setdefault(split, here(data[key]))
        return found
    if isinstance(data, (list, tuple)):
        for item in data:
            found.update({k: v for k, v in data_sources(item, root).items() if k not in found})
        return found
    if isinstance(data, str) and os.path.isdir(here(data)):
        folder = here(data)
        for split, aliases in SPLIT_NAMES.items():
            for alias in aliases:
                hit = next((os.path.join(folder, alias + s) for s in DATA_SUFFIXES
                            if os.path.isfile(os.path.join(folder, alias + s))), None)
                if hit:
                    found.setdefault(split, hit)
        return found
    if isinstance(data, str) and os.path.isfile(here(data)):
        name = os.path.basename(data).lower()
        split = next((s for s, aliases in SPLIT_NAMES.items() if any(a in name for a in aliases)), "train")
        found[split] = here(data)
    return found


def run_data_probes_for_run(run_dir: str, config: EhrDebugConfig | None = None) -> list[Finding]:
    """``doctor`` on a run directory: the data and training arguments its run.json names ([] when none)."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return []
    sources = data_sources(info.get("data"), run_dir) if isinstance(info, dict) else {}
    if "train" not in sources:
        return []
    cfg_args = info.get("config") if isinstance(info.get("config"), dict) else {}
    plan = plan_from_mapping(cfg_args) if find_training_args(cfg_args) else None
    examples = info.get("train_examples")  # what the loop trained on, when it differs from the records
    examples = examples if isinstance(examples, int) and not isinstance(examples, bool) and examples >= 0 else None
    return run_data_probes(sources["train"], sources.get("validation"), sources.get("test"), config=config,
                           plan=plan, subject=os.path.basename(os.path.normpath(run_dir)), train_examples=examples)


# ---------------------------------------------------------------- collator side

def load_tokenizer(path: str, model_type: str) -> tuple[Any, list[str]]:
    """AutoTokenizer from a local dir (or a hub id when the user has a hub); causal without pad → pad = EOS."""
    from ehrdebug.errors import require_dir

    if os.path.exists(path) or path.startswith((os.sep, ".", "~")) or os.path.isabs(path):
        require_dir(os.path.expanduser(path), "tokenizer directory")
        path = os.path.expanduser(path)
    from ehrdebug.tokenizers import load_transformers_tokenizer

    tok = load_transformers_tokenizer(path)
    notes = []
    if model_type == "causal" and tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token  # what nearly every causal fine-tuning script does
        notes.append(f"tokenizer has no pad token: set pad_token = eos_token ({tok.eos_token!r}) as typical scripts do")
    return tok, notes


def model_collator_parts(model_dir: str | None, model_type: str) -> tuple[Any, int | None]:
    """A weightless (meta-device) model for DataCollatorForSeq2Seq(model=…) and the decoder start id."""
    if not model_dir:
        return None, None
    if os.path.exists(model_dir) or model_dir.startswith((os.sep, ".", "~")):
        from ehrdebug.errors import require_dir

        require_dir(os.path.expanduser(model_dir), "model directory")
    try:
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        cfg = AutoConfig.from_pretrained(os.path.expanduser(model_dir))
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot read a model config from {model_dir}: {type(exc).__name__}") from exc
    start = getattr(cfg, "decoder_start_token_id", None)
    if model_type != "seq2seq":
        return None, start
    try:
        with torch.device("meta"):
            model = AutoModelForSeq2SeqLM.from_config(cfg)
    except Exception:  # noqa: BLE001 - fall back to checking the shift ourselves
        model = None
    return model, start


def load_collator(spec: str, tokenizer: Any, model: Any = None) -> tuple[Callable, str]:
    """``module:attr`` or ``path/file.py:attr``: an instance, a class (built with the tokenizer) or a function."""
    import importlib
    import importlib.util
    import inspect

    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise UserError(f"--collator must look like module:attr or file.py:attr, got {spec!r}")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise UserError(f"collator file not found: {module_name}")
            mspec = importlib.util.spec_from_file_location("_ehrdebug_user_collator", module_name)
            module = importlib.util.module_from_spec(mspec)  # type: ignore[arg-type]
            mspec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import (syntax error, raise at import)
        raise UserError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        raise UserError(f"{module_name} has no attribute {attr!r}")
    obj = getattr(module, attr)
    kwargs = {"model": model} if model is not None else {}
    try:
        if inspect.isclass(obj):
            try:
                return obj(tokenizer, **kwargs), obj.__name__
            except TypeError:
                return obj(tokenizer), obj.__name__
        if inspect.isfunction(obj):
            params = list(inspect.signature(obj).parameters)
            if params and params[0] in ("tokenizer", "tok", "processing_class"):
                built = obj(tokenizer)
                return built, f"{attr}(tokenizer) -> {type(built).__name__}"
            return obj, attr
    except Exception as exc:  # noqa: BLE001 - building the user's collator raised in the user's code
        raise UserError(f"cannot build the collator {spec}: {type(exc).__name__}: {exc}") from exc
    if callable(obj):
        return obj, type(obj).__name__
    raise UserError(f"{spec} is not callable")


def _text(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else ("" if value is None else str(value))


def build_features(
    records: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    model_type: str,
    *,
    input_field: str | None = None,
    target_field: str | None = None,
    pretokenized: bool | None = None,
    max_length: int = 512,
    max_target_length: int = 128,
    task_prefix: str = "",
    padding: str = "none",
) -> tuple[list[dict[str, Any]], list[int] | None, list[str]]:
    """Features for the collator, prompt lengths (causal SFT) and notes on what was done."""
    from ehrdebug.io.tables import pick_field

    first = records[0]
    if pretokenized is None:
        pretokenized = "input_ids" in first
    if pretokenized:
        if "input_ids" not in first:
            raise UserError(f"--pretokenized but the data has no input_ids column (columns: {', '.join(map(str, first))})")
        prompt_lengths = None
        if model_type == "causal" and input_field and input_field in first:
            prompt_lengths = [len(tokenizer(_text(r.get(input_field)))["input_ids"]) for r in records]
        return [dict(r) for r in records], prompt_lengths, ["features fed to the collator as stored (all columns)"]
    src = pick_field(dict(first), input_field, "data")
    tgt = target_field or next((g for g in TARGET_FIELD_GUESSES if g in first and g != src), None)
    if target_field and target_field not in first:
        raise UserError(f"data: no column {target_field!r} (columns: {', '.join(map(str, first))})")
    pad = {"none": False, "longest": False, "max_length": "max_length"}.get(padding)
    if pad is None:
        raise UserError(f"--padding must be none or max_length, got {padding!r}")
    notes = [f"tokenized {src!r}" + (f" → {tgt!r}" if tgt else "") + " as a typical script does; raw columns removed"]
    feats: list[dict[str, Any]] = []
    prompt_lengths: list[int] | None = None
    if model_type == "seq2seq":
        if not tgt:
            raise UserError(f"seq2seq needs a target column: pass --target-field (columns: {', '.join(map(str, first))})")
        for r in records:
            enc = dict(tokenizer(task_prefix + _text(r.get(src)), truncation=True, max_length=max_length, padding=pad))
            enc["labels"] = tokenizer(text_target=_text(r.get(tgt)), truncation=True, max_length=max_target_length,
                                      padding=pad)["input_ids"]
            feats.append(enc)
    elif model_type == "causal" and tgt:
        prompt_lengths = []
        eos = tokenizer.eos_token_id
        for r in records:
            prompt = _text(r.get(src))
            full = prompt + ("" if prompt.endswith((" ", "\n")) else " ") + _text(r.get(tgt))
            enc = dict(tokenizer(full, truncation=True, max_length=max_length, padding=False))
            if eos is not None and enc["input_ids"][-1] != eos and len(enc["input_ids"]) < max_length:
                enc["input_ids"] = [*enc["input_ids"], eos]
                enc["attention_mask"] = [*enc["attention_mask"], 1]
            plen = len(tokenizer(prompt, truncation=True, max_length=max_length)["input_ids"])
            enc["labels"] = [-100] * plen + list(enc["input_ids"][plen:])
            prompt_lengths.append(plen)
            feats.append(enc)
        notes.append("causal SFT: prompt + response + EOS, prompt positions -100 (alpaca-lora style)")
    else:
        for r in records:
            feats.append(dict(tokenizer(_text(r.get(src)), truncation=True, max_length=max_length, padding=pad,
                                        return_special_tokens_mask=model_type == "mlm")))
    return feats, prompt_lengths, notes


def run_collator_probe(
    data: Source,
    tokenizer: Any,
    model_type: str,
    *,
    collator: Callable | None = None,
    collator_name: str | None = None,
    decoder_start_token_id: int | None = None,
    input_field: str | None = None,
    target_field: str | None = None,
    pretokenized: bool | None = None,
    config: EhrDebugConfig | None = None,
    padding: str = "none",
    batch_size: int = 8,
    max_batches: int = 4,
    notes: Sequence[str] = (),
    subject: str = "",
) -> list[Finding]:
    """Featurize (or take as stored) a sample of ``data`` and run data.collator on it."""
    from probes.data_collator import probe_collator

    cfg = config or EhrDebugConfig()
    records = load_split(data, limit=batch_size * max_batches)
    feats, plens, made = build_features(
        records, tokenizer, model_type, input_field=input_field or cfg.text_field or None,
        target_field=target_field or cfg.target_field or None, pretokenized=pretokenized,
        max_length=cfg.max_length, max_target_length=cfg.max_target_length, task_prefix=cfg.task_prefix,
        padding=padding,
    )
    findings = probe_collator(feats, tokenizer, model_type, collator=collator, collator_name=collator_name,
                              decoder_start_token_id=decoder_start_token_id, prompt_lengths=plens,
                              batch_size=batch_size, max_batches=max_batches, subject=subject)
    summary = findings[-1]
    summary.evidence["preparation"] = [*notes, *made]
    return findings
