"""Apply a list of fix-recipes to a copy of a target, and plan them from the doctor's findings.

Layout of the output directory (always new)::

    OUT/config.yaml      the fixed training config (when the target had one), with a ``fixes`` list
    OUT/checkpoint/      the repaired model (when a fix did checkpoint surgery)
    OUT/fixes.json       what was applied, skipped and changed, and from where
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from recipes.fixes.base import CHECKPOINT, CONFIG, Target, dump_yaml, fix_record, new_out_dir, resolve_target


@dataclass
class FixResult:
    out_dir: Path
    config_path: Path | None
    checkpoint: Path | None
    applied: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for rec in self.applied:
            out.append(f"{rec['id']} ({rec['mode']}):")
            out.extend(f"  {_change_text(c)}" for c in rec["changes"]) if rec["changes"] else out.append("  nothing to change")
        out.extend(f"skipped {s['id']}: {s['why']}" for s in self.skipped)
        return out


def _change_text(change: dict[str, Any]) -> str:
    from recipes.fixes.base import Change

    return Change(change["key"], change["before"], change["after"], change.get("note", "")).text()


def _as_target(target: Target | str | os.PathLike[str]) -> Target:
    return target if isinstance(target, Target) else resolve_target(target)


def apply_fixes(
    target: Target | str | os.PathLike[str],
    recipe_ids: list[str],
    out_dir: str | os.PathLike[str],
    skip_inapplicable: bool = False,
) -> FixResult:
    """Apply ``recipe_ids`` in order to a copy of ``target`` under the new directory ``out_dir``."""
    from recipes.fixes.registry import get

    tgt = _as_target(target)
    fixes = [get(rid) for rid in dict.fromkeys(recipe_ids)]
    if not fixes:
        raise UserError("no fix-recipe given: pass --recipe NAME or --auto")
    plan: list[tuple[Any, str]] = []
    skipped: list[dict[str, str]] = []
    for fix in fixes:
        try:
            plan.append((fix, fix.mode_for(tgt)))
        except UserError as exc:
            if not skip_inapplicable:
                raise
            skipped.append({"id": fix.id, "why": str(exc)})
    out = new_out_dir(out_dir)
    tgt = replace(tgt, info={**tgt.info, "out_dir": str(out)})  # a fix that writes data (a cut copy) writes it under out
    applied: list[dict[str, Any]] = []
    cfg = copy.deepcopy(tgt.config) if tgt.config is not None else None
    checkpoint: Path | None = None
    current = tgt.checkpoint
    try:
        for n, (fix, mode) in enumerate(plan):
            if mode == CONFIG:
                try:
                    changes = fix.on_config(cfg, tgt)
                except UserError as exc:  # a fix for another recipe's config (raised before any edit)
                    if not skip_inapplicable:
                        raise
                    skipped.append({"id": fix.id, "why": str(exc)})
                    continue
            else:
                stage = out / f".stage-{n}"
                changes = fix.on_checkpoint(current, stage, tgt)
                if stage.is_dir():
                    current = stage
            applied.append(fix_record(fix, mode, changes))
        if current is not None and current != tgt.checkpoint:
            checkpoint = out / "checkpoint"
            current.rename(checkpoint)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # nothing half-written is left behind
        raise
    finally:
        for stage in out.glob(".stage-*"):
            shutil.rmtree(stage, ignore_errors=True)
    config_path = None
    if cfg is not None and any(r["mode"] == CONFIG for r in applied):
        config_path = _write_config(cfg, tgt, out, applied, checkpoint)
    record = {
        "source": str(tgt.path),
        "source_kind": tgt.kind,
        "created": time.time(),
        "fixes": applied,
        "skipped": skipped,
        "config": str(config_path) if config_path else None,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }
    if checkpoint is not None:
        (checkpoint / "ehrdebug_fixes.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "fixes.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return FixResult(out, config_path, checkpoint, applied, skipped)


def _write_config(cfg: dict[str, Any], tgt: Target, out: Path, applied: list[dict[str, Any]], checkpoint: Path | None) -> Path:
    """The fixed config: relative paths made absolute (it now lives elsewhere), a fresh ``out`` and a ``fixes`` list."""
    base = tgt.config_path.parent if tgt.config_path else Path.cwd()
    for holder, key in ((cfg, "base"), (cfg, "data"), (cfg, "tokenizer"), *((cfg["data"], k) for k in ("root", "codes") if isinstance(cfg.get("data"), dict))):
        value = holder.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            for root in (base, Path.cwd()):
                if (root / value).exists():
                    holder[key] = str((root / value).resolve())
                    break
    if checkpoint is not None:
        cfg["base"] = str(checkpoint.resolve())
    cfg["out"] = str((out / "run").resolve())
    if "resume" in cfg:
        cfg["resume"] = False
    entries = [{"id": r["id"], "changes": [_change_text(c) for c in r["changes"]]} for r in applied]
    header = f"# fixed by ehrdebug fix from {tgt.path}\n"
    if _config_accepts_fixes(cfg):
        cfg["fixes"] = list(cfg.get("fixes") or []) + entries
    else:  # the recipe's config schema has no ``fixes`` key: record them as comments (and in fixes.json)
        header += "".join(f"# fix {e['id']}: {'; '.join(e['changes']) or 'no change'}\n" for e in entries)
    path = out / "config.yaml"
    dump_yaml(cfg, path, header)
    return path


def _config_accepts_fixes(cfg: dict[str, Any]) -> bool:
    """Train-recipe configs reject unknown keys; write ``fixes`` only where the schema has it."""
    if "recipe" not in cfg:
        return True
    try:
        from recipes.train.config import DEFAULTS
    except ImportError:
        return True
    return "fixes" in DEFAULTS


@dataclass
class AutoPlan:
    """What the doctor's findings ask for: automatic fixes (in rank order) and advice to read."""

    fix_ids: list[str]
    advice: list[tuple[str, str]]
    report: Any
    reasons: dict[str, list[str]] = field(default_factory=dict)


def named_recipes(findings: list[Any]) -> dict[str, list[Any]]:
    """Recipe id → the warn/fail findings that name it, worst first (the order fixes are planned in)."""
    from ehrdebug.findings import Report, Severity

    named: dict[str, list[Any]] = {}
    for finding in Report(subject="", findings=list(findings)).ranked():
        if finding.severity >= Severity.WARN:
            for rid in finding.recipes:
                named.setdefault(rid, []).append(finding)
    return named


def auto_plan(path: str | os.PathLike[str], data: str | None = None, config: Any = None, *,
              report: Any = None, allow_pickle: bool = False) -> AutoPlan:
    """Run the doctor on ``path`` (or take its ``report``) and split the recipe ids its warn/fail findings name."""
    from ehrdebug.recipe_ids import ADVICE, FIX
    from probes.doctor import diagnose

    if report is None:
        report = diagnose(path, data=data, config=config, allow_pickle=allow_pickle)
    named = named_recipes(report.findings)
    reasons = {rid: [f"{f.probe}: {f.title}" for f in found] for rid, found in named.items()}
    fix_ids = drop_alternatives([rid for rid in named if rid in FIX])
    advice = [(rid, ADVICE[rid]) for rid in named if rid in ADVICE]
    return AutoPlan(fix_ids, advice, report, reasons)


# fixes that are alternatives to one another: a finding may name several, only the first is applied
ALTERNATIVES: tuple[frozenset[str], ...] = (
    frozenset({"init-new-embeddings-mean", "init-new-embeddings-description"}),
    frozenset({"train-longer", "lower-learning-rate"}),  # a constant output names both; one retrain tests one idea
    frozenset({"increase-learning-rate", "lower-learning-rate", "train-longer"}),  # a classifier at chance names two
)


def drop_alternatives(fix_ids: list[str]) -> list[str]:
    kept: list[str] = []
    for rid in fix_ids:
        if any(rid in group and any(k in group for k in kept) for group in ALTERNATIVES):
            continue
        kept.append(rid)
    return kept


__all__ = ["AutoPlan", "FixResult", "apply_fixes", "auto_plan", "named_recipes", "CHECKPOINT", "CONFIG"]
