"""``ehrdebug doctor``: decide which probes apply to a path and run them into one ranked report.

A path is an ehrdebug run (run.json/events.jsonl), a plain HF Trainer output directory (trainer_state.json
at the top or in checkpoint-*/) or a checkpoint/model directory (config.json). Curves come from the run's
history; the model and tokenizer from the path itself or the run's latest checkpoint; examples from
``--data`` or the data the run names. Each suite that cannot run says why in a ``doctor.coverage``
finding, so a report never looks cleaner than what was actually checked.
"""

from __future__ import annotations

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
from ehrdebug.loading import has_tokenizer as _has_tokenizer
from ehrdebug.loading import is_model_dir as _is_model_dir
from ehrdebug.loading import weight_bytes as _weight_bytes
from ehrdebug.runstore.history import History, Series
from probes.doctor_codes import CODE_PROBES
from probes.doctor_run import RunRecord, read_run

GENERATOR = "ehrdebug doctor"
TARGET_GUESSES = ("target", "output", "response", "answer", "completion", "summary")
MAX_EXAMPLES = 2000
MAX_MODEL_BYTES = int(float(os.environ.get("EHRDEBUG_DOCTOR_MAX_MODEL_GB", "4")) * 2**30)  # loaded on CPU
HF_DOCTOR_DIR = "ehrdebug-doctor"
# which registered probes (by id prefix) each suite runs; the registry says what inputs each needs
SUITE_PROBES = {"curves": ("curves.", "metrics."), "data": ("data.",), "tokenizer": ("tokenizer.",),
                "model": ("model.", "generation.", "runtime.", "attribution."), "codes": CODE_PROBES}
MISSING = {"curves": "no training history (a bare checkpoint without trainer_state.json, or no losses logged yet)",
           "data": "no data: pass --data FILE (the run names no data files)",
           "tokenizer": "no tokenizer files in the checkpoint or run, or no texts (pass --data FILE)",
           "model": "no checkpoint with a config.json or adapter_config.json",
           "codes": "no code-model evidence (saved batches, test predictions) and no labelled training data"}


class UnloadableModel(UserError):
    """The path's checkpoint exists but cannot be loaded: the doctor stops with the reason (exit 2)."""


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
        from ehrdebug.loading import final_checkpoint

        target.model_dir = final_checkpoint(run.path)  # the best checkpoint when the run kept one, else the latest
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


class _Doctor:
    def __init__(self, target: Target, cfg: EhrDebugConfig, data: str | None, allow_pickle: bool = False,
                 base: str | None = None) -> None:
        self.target, self.cfg, self.data, self.allow_pickle, self.base = target, cfg, data, allow_pickle, base
        self.findings: list[Finding] = []
        self.suites: dict[str, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] | None = None
        self.data_source: str | None = None
        run = target.run
        self.record: RunRecord = read_run(run.path if run is not None else target.path,
                                          run.info if run is not None and run.kind == "ehrdebug" else None)
        self.loaded: tuple[Any, Any] | None = None
        self._history: History | None = None

    def run_suite(self, name: str, fn: Callable[[], list[Finding] | None]) -> None:
        start = time.perf_counter()
        try:
            found = fn()
        except UnloadableModel:
            raise  # the CI gate must not pass on a checkpoint it could not read (exit 2)
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
        sources = self.run_data_sources()
        for split in dict.fromkeys((self.record.eval_split, "validation", "test", "train")):
            if split in sources:
                try:
                    self.records = read_records(sources[split], limit=MAX_EXAMPLES)
                    self.data_source = sources[split]
                except UserError as exc:
                    self.target.notes.append(f"run data {sources[split]}: {exc}")
                return

    def run_data_sources(self) -> dict[str, str]:
        from probes.data_suite import data_sources

        run = self.target.run
        if run is None or run.kind != "ehrdebug":
            return {}
        return data_sources((run.info or {}).get("data"), str(run.path))

    def history(self) -> History:
        """The run's history, read once (a long event log is the slowest input to read)."""
        if self._history is None:
            self._history = self.target.run.history()
        return self._history

    def inputs(self) -> set[str]:
        """The registry's input names this target provides."""
        from probes.doctor_codes import code_inputs

        have = {"config"}
        run = self.target.run
        if run is not None:
            have.add("run")
            history = self.history()
            if len(history.train) or history.evals or history.metrics:
                have.add("history")
        if self.records or self.data or self.run_data_sources():
            have.add("data")
        if self.target.tokenizer_dir is not None:
            have.add("tokenizer")
        if self.target.model_dir is not None:
            have.add("model")
        return have | code_inputs(run.path if run is not None else None)  # kept evidence: batches, predictions

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
                if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    value = " ".join(value)  # a code sequence (codes records): the words a code tokenizer reads
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
        history = _until(self.history(), self.target.until_step)
        if not len(history.train) and not history.evals and not history.metrics:
            self.skip("curves", "the run logged no losses yet")
            return None
        return run_curve_probes(history, self.cfg) + loss_vs_accuracy(history, self.cfg)

    def data_probes(self) -> list[Finding] | None:
        from probes import data_suite

        if self.data:
            return data_suite.run_data_probes(self.data, config=self.cfg, subject=os.path.basename(self.data))
        if self.target.run is not None and self.target.run.kind == "ehrdebug":
            found = data_suite.run_data_probes_for_run(str(self.target.run.path), self.cfg)
            if found:
                return found + self.collator_probes()
        self.skip("data", "no data: pass --data FILE (the run names no data files)")
        return None

    def collator_probes(self) -> list[Finding]:
        """``data.collator`` with the collation settings the run recorded (encoder-decoder runs that record them)."""
        from probes.doctor_run import collator_findings

        if not self.record.config or not self.records:
            return []
        loaded = self.model() or self.base_model()
        if loaded is None or loaded[1] is None or not getattr(loaded[0].config, "is_encoder_decoder", False):
            return []
        return collator_findings(self.record, loaded[0], loaded[1], self.records, self.cfg)

    def base_model(self) -> tuple[Any, Any] | None:
        """A run that died before its first checkpoint (seed 002's collator crash): the base it started from,
        with the special tokens it registered, so its batches can still be rebuilt and judged."""
        from ehrdebug.data.sample import resolve_data_path
        from ehrdebug.loading import load_model

        base = self.record.config.get("base")
        if not isinstance(base, str) or not resolve_data_path(base).is_dir():
            return None
        model, tokenizer = load_model(resolve_data_path(base), allow_pickle=self.allow_pickle)
        if tokenizer is not None and self.record.config.get("register_special_tokens"):
            tokens = [t for t in self.record.config.get("special_tokens") or [] if isinstance(t, str)]
            if tokens and tokenizer.add_tokens(tokens, special_tokens=True):
                model.resize_token_embeddings(len(tokenizer))
        self.target.notes.append(f"data.collator: no checkpoint; batches rebuilt on the run's base {base}")
        return model, tokenizer

    def model(self) -> tuple[Any, Any] | None:
        """The checkpoint's (model, tokenizer), loaded once for every suite that needs it."""
        from ehrdebug.loading import load_model

        if self.loaded is None and self.target.model_dir is not None and self.model_fits():
            try:
                self.loaded = load_model(self.target.model_dir, self.target.tokenizer_dir,
                                         allow_pickle=self.allow_pickle, base=self.base)
            except Exception as exc:  # corrupt/empty weights, unknown model_type, pickle-only, an adapter's missing base
                why = str(exc) if isinstance(exc, UserError) else (
                    f"cannot load the model in {self.target.model_dir}: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}"[:300])
                # weights the doctor cannot load (a checkpoint given alone or a run's latest) are an input
                # error: a CI gate must not pass on them (issue 15). A run whose checkpoint holds no weight
                # file at all (stripped to save space) only costs the model suites, beside its curves.
                present = any(f.suffix in (".safetensors", ".bin") for f in self.target.model_dir.iterdir())
                unloadable = present or self.target.kind == "checkpoint"
                raise (UnloadableModel if unloadable else UserError)(why) from None
        return self.loaded

    def model_fits(self) -> bool:
        return _weight_bytes(self.target.model_dir) <= MAX_MODEL_BYTES if self.target.model_dir else False

    def tokenizer_probes(self) -> list[Finding] | None:
        from probes.tokenizer_suite import run_tokenizer_probes

        if self.target.tokenizer_dir is None:
            self.skip("tokenizer", "no tokenizer files in the checkpoint or run")
            return None
        inputs, targets = self.sides()
        if not inputs and not targets:
            self.skip("tokenizer", "no texts: pass --data FILE")
            return None
        return run_tokenizer_probes(str(self.target.tokenizer_dir), inputs or targets, self.cfg, targets=targets if inputs else None)

    def model_probes(self) -> list[Finding] | None:
        from probes.doctor_codes import text_probes_skip_reason, timeline_findings
        from probes.doctor_run import model_findings
        from probes.special_tokens import code_timelines

        if self.target.model_dir is None:
            self.skip("model", "no checkpoint with a config.json or adapter_config.json")
            return None
        size = _weight_bytes(self.target.model_dir)
        if size > MAX_MODEL_BYTES:
            self.skip("model", f"checkpoint weights are {size / 2**30:.1f} GB, over the {MAX_MODEL_BYTES / 2**30:g} GB the "
                               "doctor loads on CPU (raise EHRDEBUG_DOCTOR_MAX_MODEL_GB to force)")
            return None
        model, tokenizer = self.model()  # type: ignore[misc]
        records = self.records or []
        if records and tokenizer is None:
            self.target.notes.append("no tokenizer beside the checkpoint: generation probes skipped")
            records = []
        if records and (reason := text_probes_skip_reason(model)):  # an encoder (BEHRT) generates nothing
            self.target.notes.append(reason)
            records = []
        timelines = code_timelines(model, tokenizer, records) if records else None  # EHRMamba's causal LM
        found = model_findings(model, tokenizer, self.record, [] if timelines else records, self.cfg, self.run_data_sources())
        if timelines:
            found += timeline_findings(model, tokenizer, timelines, self.record, self.cfg,
                                       self.record.code_vocabulary(self.run_data_sources()), notes=self.target.notes)
        return found

    def coverage(self, inputs: set[str]) -> Finding:
        from probes.registry import PROBES, available

        skipped = {k: v["reason"] for k, v in self.suites.items() if not v.get("ran")}
        ran = [k for k, v in self.suites.items() if v.get("ran")]
        title = f"Ran {', '.join(ran) or 'no'} probes" + (f"; skipped {', '.join(skipped)}" if skipped else "")
        applicable = [spec.id for spec in available(inputs)]
        evidence: dict[str, Any] = {"ran": ran, "skipped": skipped, "kind": self.target.kind,
                                    "model_dir": str(self.target.model_dir) if self.target.model_dir else None,
                                    "tokenizer_dir": str(self.target.tokenizer_dir) if self.target.tokenizer_dir else None,
                                    "data": self.data_source, "inputs": sorted(inputs),
                                    "probes_lacking_inputs": {s.id: sorted(set(s.needs) - inputs) for s in PROBES
                                                              if s.id not in applicable}}
        if self.target.notes:
            evidence["notes"] = self.target.notes
        return Finding("doctor.coverage", Severity.INFO if skipped else Severity.OK, title, evidence=evidence,
                       rule="every suite whose inputs are present runs; the others are listed with the reason")


def diagnose(path: str | os.PathLike[str], data: str | None = None,
             config: EhrDebugConfig | str | None = None, *, skip: Mapping[str, str] | None = None,
             allow_pickle: bool = False, base: str | None = None) -> Report:
    """The one doctor: every probe that applies to ``path`` (an ehrdebug run, an HF output dir, a checkpoint or a
    PEFT adapter), as one report. ``ehrdebug doctor``, the TUI, ``fix --auto``, the zoo and the demo all call it.

    What the run records (run.json's config: decoding settings, inference prefix, collation; its tokens info;
    ehrdebug.toml) decides how its model is probed, so a decoding fix the run applies is judged on the outputs
    the run really produces. ``skip`` maps suite names (curves, data, tokenizer, model) to the reason a caller
    does without them. Pickle-only weights load only with ``allow_pickle``.
    """
    from ehrdebug.errors import require_file
    from probes.doctor_codes import code_findings
    from probes.registry import available

    start = time.perf_counter()
    target = resolve_target(path)
    cfg = _config(config, target.path)
    if data is not None:
        require_file(data, "data file")
    doctor = _Doctor(target, cfg, data, allow_pickle, base)  # base: a PEFT adapter's --base
    doctor.load_records()
    inputs = doctor.inputs()
    applicable = {spec.id for spec in available(inputs)}
    suites = {"curves": doctor.curves, "data": doctor.data_probes, "tokenizer": doctor.tokenizer_probes,
              "model": doctor.model_probes, "codes": lambda: code_findings(doctor.record, doctor.model, cfg=cfg, notes=target.notes)}
    for name, suite in suites.items():
        if skip and name in skip:
            doctor.skip(name, skip[name])
        elif not any(pid.startswith(SUITE_PROBES[name]) for pid in applicable):
            doctor.skip(name, MISSING[name])  # the registry: none of this suite's probes has its inputs here
        else:
            doctor.run_suite(name, suite)
    findings = doctor.findings + [doctor.coverage(inputs)]
    meta = {"generator": GENERATOR, "path": str(target.path), "kind": target.kind, "suites": doctor.suites,
            "model_dir": str(target.model_dir) if target.model_dir else None, "data": doctor.data_source,
            "seconds": round(time.perf_counter() - start, 3), "created": time.time()}
    if doctor.record.generation:
        from ehrdebug.decoding import describe

        meta["decoding"] = describe(doctor.record.generation)
    if target.run is not None:
        meta["run_status"] = target.run.status
    return Report(subject=f"{target.kind} {target.path}", findings=findings, meta=meta)
