"""``ehrdebug doctor``: decide which probes apply to a path and run them into one ranked report.

A path is an ehrdebug run (run.json/events.jsonl), a plain HF Trainer output directory (trainer_state.json
at the top or in checkpoint-*/) or a checkpoint/model directory (config.json). Curves come from the run's
history; the model and tokenizer from the path itself or the run's latest checkpoint; examples from
``--data`` or the data the run names. Each suite that cannot run says why in a ``doctor.coverage``
finding, so a report never looks cleaner than what was actually checked.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.config import EhrDebugConfig, load_config
from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Report, Severity
from ehrdebug.runstore.history import History, Series

GENERATOR = "ehrdebug doctor"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
TARGET_GUESSES = ("target", "output", "response", "answer", "completion", "summary")
MAX_EXAMPLES = 2000
MAX_MODEL_BYTES = int(float(os.environ.get("EHRDEBUG_DOCTOR_MAX_MODEL_GB", "4")) * 2**30)  # loaded on CPU
HF_DOCTOR_DIR = "ehrdebug-doctor"


@dataclass
class Target:
    """What a path holds: a run (curves), a model directory and a tokenizer directory, each optional."""

    path: Path
    kind: str  # 'ehrdebug' | 'hf' | 'checkpoint'
    run: Any = None
    model_dir: Path | None = None
    tokenizer_dir: Path | None = None
    report_dir: Path | None = None
    until_step: int | None = None
    notes: list[str] = field(default_factory=list)


def _is_model_dir(path: Path) -> bool:
    """A checkpoint the model probes can load: a full model (config.json) or a PEFT adapter."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def _weight_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file())


def _has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in TOKENIZER_FILES)


def resolve_target(path: str | os.PathLike[str]) -> Target:
    """Classify ``path``; a UserError (exit 2) when it is none of the three kinds."""
    from ehrdebug.errors import require_json_object
    from ehrdebug.runstore.reader import check_run, open_run

    p = Path(path)
    if not p.exists():
        raise UserError(f"path not found: {p}")
    if not p.is_dir():
        raise UserError(f"expected a run, HF output or checkpoint directory but got a file: {p}")
    run, until = None, None
    parent_run = p.parent.parent if p.parent.name == "checkpoints" else None
    if _is_model_dir(p) and parent_run is not None and (parent_run / "run.json").is_file():
        run = open_run(parent_run)  # checkpoints/step-N of an ehrdebug run: that run's curves up to N
        until = _step_of(p.name)
    else:
        try:
            run = open_run(p)
        except UserError:
            if not _is_model_dir(p):
                raise UserError(f"{p} is not a run (no run.json/events.jsonl/trainer_state.json) "
                                "nor a checkpoint (no config.json)") from None
    if run is not None:
        check_run(run)  # run.json / trainer_state.json that is not JSON, an events.jsonl of garbage: exit 2
    if _is_model_dir(p):
        require_json_object(p / ("config.json" if (p / "config.json").is_file() else "adapter_config.json"))
    is_checkpoint = run is None or until is not None or (
        _is_model_dir(p) and run.kind == "hf" and (_step_of(p.name) is not None or not run.history().train.steps))
    target = Target(path=p, kind="checkpoint" if is_checkpoint else run.kind, run=run, until_step=until)
    if _is_model_dir(p):
        target.model_dir = p
    elif run is not None:
        latest = run.latest_checkpoint()
        if latest is not None and _is_model_dir(latest.path):
            target.model_dir = latest.path
    for candidate in (target.model_dir, p):
        if candidate is not None and _has_tokenizer(candidate):
            target.tokenizer_dir = candidate
            break
    if target.tokenizer_dir is None and run is not None and run.kind == "ehrdebug":
        named = (run.info or {}).get("tokenizer")
        if isinstance(named, str):
            candidate = Path(named) if os.path.isabs(named) else run.path / named
            if candidate.is_dir() and _has_tokenizer(candidate):
                target.tokenizer_dir = candidate
    if target.kind == "ehrdebug":
        target.report_dir = p / "artifacts" / "doctor"
    elif target.kind == "checkpoint" and until is not None:
        target.report_dir = run.path / "artifacts" / f"doctor-{p.name}"
    elif target.kind == "hf":
        target.report_dir = p / HF_DOCTOR_DIR
    else:
        target.report_dir = p.parent / f"{HF_DOCTOR_DIR}-{p.name}"
    return target


def _step_of(name: str) -> int | None:
    match = re.match(r"^(?:checkpoint|step)-(\d+)$", name)
    return int(match.group(1)) if match else None


def _until(history: History, step: int | None) -> History:
    """The part of a run's history a checkpoint saw (everything logged at or before its step)."""
    if step is None:
        return history
    def cut(series: Series) -> Series:
        out = Series(series.name)
        for s, v, e in zip(series.steps, series.values, series.epochs, strict=False):
            if s <= step:
                out.add(s, v, e)
        return out
    return History(train=cut(history.train), evals={k: cut(v) for k, v in history.evals.items()},
                   metrics={k: cut(v) for k, v in history.metrics.items()}, meta=dict(history.meta))


def _config(config: EhrDebugConfig | str | None, path: Path) -> EhrDebugConfig:
    if isinstance(config, EhrDebugConfig):
        return config
    return load_config(str(path), config)


def _suite(module: str, attr: str) -> Callable[..., Any] | None:
    """A probe suite another part provides; None while that module does not exist yet."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, attr, None)


class _Doctor:
    def __init__(self, target: Target, cfg: EhrDebugConfig, data: str | None) -> None:
        self.target, self.cfg, self.data = target, cfg, data
        self.findings: list[Finding] = []
        self.suites: dict[str, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] | None = None
        self.data_source: str | None = None

    def run_suite(self, name: str, fn: Callable[[], list[Finding] | None]) -> None:
        start = time.perf_counter()
        try:
            found = fn()
        except UserError as exc:
            self.skip(name, str(exc))
            return
        except Exception as exc:  # a broken suite must not hide what the others found
            self.findings.append(Finding(f"doctor.{name}", Severity.WARN, f"The {name} probes crashed: {type(exc).__name__}",
                                         evidence={"error": f"{type(exc).__name__}: {exc}"[:500]},
                                         rule="every applicable suite must run to completion"))
            self.suites[name] = {"ran": False, "reason": f"crashed: {type(exc).__name__}: {exc}"[:300]}
            return
        if found is None:
            return
        self.findings.extend(found)
        self.suites[name] = {"ran": True, "findings": len(found), "seconds": round(time.perf_counter() - start, 3)}

    def skip(self, name: str, reason: str) -> None:
        self.suites[name] = {"ran": False, "reason": reason}

    # -- inputs -------------------------------------------------------------------------------------
    def load_records(self) -> None:
        from ehrdebug.io.tables import read_records

        if self.data:
            self.records = read_records(self.data, limit=MAX_EXAMPLES)
            self.data_source = self.data
            return
        sources = self._run_data_sources()
        for split in ("validation", "test", "train"):
            if split in sources:
                try:
                    self.records = read_records(sources[split], limit=MAX_EXAMPLES)
                    self.data_source = sources[split]
                except UserError as exc:
                    self.target.notes.append(f"run data {sources[split]}: {exc}")
                return

    def _run_data_sources(self) -> dict[str, str]:
        run = self.target.run
        if run is None or run.kind != "ehrdebug":
            return {}
        data_sources = _suite("probes.data_suite", "data_sources")
        if data_sources is None:
            return {}
        return data_sources((run.info or {}).get("data"), str(self.target.path))

    def sides(self) -> tuple[list[str], list[str]]:
        """(input texts, target texts): targets are judged against the decoder's own length limit."""
        from ehrdebug.io.tables import pick_field

        if not self.records:
            return [], []
        column = pick_field(self.records[0], self.cfg.text_field or None, self.data_source or "data")
        target = self.cfg.target_field or next((g for g in TARGET_GUESSES if g in self.records[0] and g != column), "")
        inputs: list[str] = []
        targets: list[str] = []
        for record in self.records:
            for key, out in ((column, inputs), (target, targets)):
                value = record.get(key) if key else None
                if isinstance(value, str) and value:
                    out.append(value)
        return inputs, targets

    # -- suites -------------------------------------------------------------------------------------
    def curves(self) -> list[Finding] | None:
        from probes.curves import run_curve_probes
        from probes.metrics import loss_vs_accuracy

        run = self.target.run
        if run is None:
            self.skip("curves", "no training history (a bare checkpoint without trainer_state.json)")
            return None
        history = _until(run.history(), self.target.until_step)
        if not len(history.train) and not history.evals and not history.metrics:
            self.skip("curves", "the run logged no losses yet")
            return None
        return run_curve_probes(history, self.cfg) + loss_vs_accuracy(history, self.cfg)

    def data_probes(self) -> list[Finding] | None:
        run_data = _suite("probes.data_suite", "run_data_probes")
        if run_data is None:
            self.skip("data", "probes.data_suite is not available")
            return None
        if self.data:
            return run_data(self.data, config=self.cfg, subject=os.path.basename(self.data))
        if self.target.run is not None and self.target.run.kind == "ehrdebug":
            for_run = _suite("probes.data_suite", "run_data_probes_for_run")
            found = for_run(str(self.target.path), self.cfg) if for_run else []
            if found:
                return found
        self.skip("data", "no data: pass --data FILE (the run names no data files)")
        return None

    def tokenizer_probes(self) -> list[Finding] | None:
        run_tok = _suite("probes.tokenizer_suite", "run_tokenizer_probes")
        if run_tok is None:
            self.skip("tokenizer", "probes.tokenizer_suite is not available")
            return None
        if self.target.tokenizer_dir is None:
            self.skip("tokenizer", "no tokenizer files in the checkpoint or run")
            return None
        inputs, targets = self.sides()
        if not inputs and not targets:
            self.skip("tokenizer", "no texts: pass --data FILE")
            return None
        return run_tok(str(self.target.tokenizer_dir), inputs or targets, self.cfg, targets=targets if inputs else None)

    def model_probes(self) -> list[Finding] | None:
        run_model = _suite("probes.model_suite", "run_model_probes")
        if run_model is None:
            self.skip("model", "probes.model_suite is not available")
            return None
        if self.target.model_dir is None:
            self.skip("model", "no checkpoint with a config.json or adapter_config.json")
            return None
        size = _weight_bytes(self.target.model_dir)
        if size > MAX_MODEL_BYTES:
            self.skip("model", f"checkpoint weights are {size / 2**30:.1f} GB, over the {MAX_MODEL_BYTES / 2**30:g} GB the "
                               "doctor loads on CPU (raise EHRDEBUG_DOCTOR_MAX_MODEL_GB to force)")
            return None
        records = self.records or []
        if records and self.target.tokenizer_dir is None:
            self.target.notes.append("no tokenizer beside the checkpoint: generation probes skipped")
            records = []
        return _call_model_suite(run_model, self.target, records, self.cfg)

    def coverage(self) -> Finding:
        skipped = {k: v["reason"] for k, v in self.suites.items() if not v.get("ran")}
        ran = [k for k, v in self.suites.items() if v.get("ran")]
        title = f"Ran {', '.join(ran) or 'no'} probes" + (f"; skipped {', '.join(skipped)}" if skipped else "")
        evidence: dict[str, Any] = {"ran": ran, "skipped": skipped, "kind": self.target.kind,
                                    "model_dir": str(self.target.model_dir) if self.target.model_dir else None,
                                    "tokenizer_dir": str(self.target.tokenizer_dir) if self.target.tokenizer_dir else None,
                                    "data": self.data_source}
        if self.target.notes:
            evidence["notes"] = self.target.notes
        return Finding("doctor.coverage", Severity.INFO if skipped else Severity.OK, title, evidence=evidence,
                       rule="every suite whose inputs are present runs; the others are listed with the reason")


def _call_model_suite(run_model: Callable[..., Any], target: Target, records: list[dict[str, Any]],
                      cfg: EhrDebugConfig) -> list[Finding]:
    """Load the checkpoint and run the model probes (with the base vocabulary size when the run names its base)."""
    assert target.model_dir is not None
    model, tokenizer = load_model(target.model_dir, target.tokenizer_dir)
    return run_model(model, tokenizer, records, cfg, base_vocab_size=_base_vocab_size(target))


def _base_vocab_size(target: Target) -> int | None:
    """vocab_size of the local base model an ehrdebug run started from (so added rows can be told apart)."""
    import json

    run = target.run
    base = (run.info or {}).get("base_model") if run is not None and run.kind == "ehrdebug" else None
    if not isinstance(base, str):
        return None
    config = Path(base if os.path.isabs(base) else run.path / base) / "config.json"
    try:
        size = json.loads(config.read_text(encoding="utf-8")).get("vocab_size")
    except (OSError, ValueError):
        return None
    return int(size) if isinstance(size, int) else None


def load_model(model_dir: Path, tokenizer_dir: Path | None) -> tuple[Any, Any]:
    """A local HF checkpoint (or PEFT adapter on a local base) as (model, tokenizer), eval mode, CPU."""
    import json

    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the report is the output; no loading bars on stderr
    adapter = model_dir / "adapter_config.json"
    base_dir = model_dir
    if adapter.is_file() and not (model_dir / "config.json").is_file():
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {adapter}: {exc}") from exc
        if not os.path.isdir(base):
            raise UserError(f"the adapter's base model {base!r} is not a local directory (the doctor never downloads)")
        base_dir = Path(base)
    try:
        config = AutoConfig.from_pretrained(str(base_dir), local_files_only=True)
        cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        model = cls.from_pretrained(str(base_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load the model in {base_dir}: {exc}".splitlines()[0]) from exc
    if base_dir != model_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dir), is_trainable=True)  # as it would train
    model.eval()
    tok_dir = tokenizer_dir or (base_dir if _has_tokenizer(base_dir) else None)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True) if tok_dir else None
    return model, tokenizer


def diagnose(path: str | os.PathLike[str], data: str | None = None,
             config: EhrDebugConfig | str | None = None, *, skip: Mapping[str, str] | None = None,
             replace: Mapping[str, Callable[[], list[Finding] | None]] | None = None) -> Report:
    """Every probe that applies to ``path``, as one report (ranked by ``Report.ranked()`` when rendered).

    ``skip`` maps suite names (curves, data, tokenizer, model) to the reason a caller does without them;
    the coverage finding lists them. ``replace`` maps a suite name to the function that runs it instead
    (e.g. the model suite with a training run's own decoding settings), guarded like any suite.
    """
    from ehrdebug.errors import require_file

    start = time.perf_counter()
    target = resolve_target(path)
    cfg = _config(config, target.path)
    if data is not None:
        require_file(data, "data file")
    doctor = _Doctor(target, cfg, data)
    doctor.load_records()
    suites = {"curves": doctor.curves, "data": doctor.data_probes, "tokenizer": doctor.tokenizer_probes,
              "model": doctor.model_probes}
    for name, suite in suites.items():
        suite = (replace or {}).get(name, suite)
        if skip and name in skip:
            doctor.skip(name, skip[name])
        else:
            doctor.run_suite(name, suite)
    findings = doctor.findings + [doctor.coverage()]
    meta = {"generator": GENERATOR, "path": str(target.path), "kind": target.kind, "suites": doctor.suites,
            "model_dir": str(target.model_dir) if target.model_dir else None, "data": doctor.data_source,
            "seconds": round(time.perf_counter() - start, 3), "created": time.time()}
    if target.run is not None:
        meta["run_status"] = target.run.status
    return Report(subject=f"{target.kind} {target.path}", findings=findings, meta=meta)
