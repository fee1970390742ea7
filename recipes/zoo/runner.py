"""Run a zoo case for real, diagnose it, then apply its fix-recipe to the run and retrain.

Layout under ``OUT`` (a new directory)::

    OUT/broken/            the run that exhibits the failure (ehrdebug run directory)
    OUT/broken.report.json the doctor's report on it
    OUT/fix/               ``ehrdebug fix`` output: the fixed config (+ fixes.json)
    OUT/fixed/             the retrained run
    OUT/fixed.report.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from ehrdebug.findings import Finding, Report
from recipes.zoo.case import Case, above_info

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class CaseRun:
    case: Case
    run_dir: Path
    report: Report
    seconds: float
    crashed: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def fired(self) -> list[Finding]:
        return self.case.firing(self.report)

    def above_info(self) -> list[Finding]:
        return above_info(self.report)


def config_path(name: str) -> Path:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"recipe config {name!r} not found in {CONFIG_DIR}")
    return path


def build_config(case: Case, extra: list[str] | None = None) -> dict[str, Any]:
    from recipes.train import load_recipe_config

    overrides = list(case.overrides) + list(extra or [])
    if not (CONFIG_DIR / f"{case.config}.yaml").is_file() and case.config.startswith("t5_diagnosis"):
        return load_recipe_config(None, ["recipe=t5_diagnosis", *overrides])  # the recipe's built-in defaults
    return load_recipe_config(str(config_path(case.config)), overrides)


def diagnose_run(case: Case, run_dir: Path, doctor: bool = True) -> Report:
    """The doctor's report on the run, plus the case's own probe call when the doctor cannot read it.
    ``doctor=False``: the case's own probe only (a test that needs the one verdict, not the doctor's minutes)."""
    if not doctor and case.evidence is not None:
        return Report(subject=str(run_dir), findings=list(case.evidence(run_dir)))
    from probes.doctor import diagnose

    report = diagnose(run_dir)
    if case.evidence is not None and not [f for f in report.findings if f.probe == case.probe]:
        report.extend(case.evidence(run_dir))
    return report


def _train(config: dict[str, Any], run_dir: Path) -> tuple[Path, str]:
    """Train; a crash that the case expects (seed 002's collator) is returned as text, not raised."""
    from recipes.train import run_training

    try:
        return Path(run_training(config, out_dir=run_dir)), ""
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:  # IndexError: cross-entropy on a -1 label
        return run_dir, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


def _save_report(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def run_case(case: Case, out: str | os.PathLike[str], extra: list[str] | None = None,
             data_root: str | os.PathLike[str] | None = None, doctor: bool = True) -> CaseRun:
    """Train the broken run of ``case`` under ``out/broken`` (on the zoo's small data root) and diagnose it."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / "broken"
    if run_dir.exists():
        raise UserError(f"{run_dir} already exists; choose a new --out")
    from recipes.zoo.data import tiny_root

    root = tiny_root(Path(data_root) if data_root else out_dir.parent / "zoo-data")
    prepared = list(case.prepare(root)) if case.prepare is not None else []  # data the case writes (a leaky copy)
    config = build_config(case, [f"data.root={root.resolve()}", *prepared, *(extra or [])])
    (out_dir / "broken.config.json").write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
    start = time.time()
    run_dir, crashed = _train(config, run_dir)
    if crashed and not case.expect_crash:
        raise RuntimeError(f"zoo case {case.name}: training failed unexpectedly: {crashed}")
    report = diagnose_run(case, run_dir, doctor)
    _save_report(report, out_dir / "broken.report.json")
    return CaseRun(case, run_dir, report, time.time() - start, crashed)


def fix_and_rerun(run: CaseRun, out: str | os.PathLike[str], extra: list[str] | None = None,
                  doctor: bool = True) -> CaseRun:
    """Apply the case's fix-recipe to the broken run (a new config), retrain it and diagnose again."""
    from recipes.fixes import apply_fixes
    from recipes.train import load_recipe_config

    out_dir = Path(out)
    start = time.time()
    result = apply_fixes(run.run_dir, [run.case.fix], out_dir / "fix")
    if result.config_path is None:
        raise RuntimeError(f"zoo case {run.case.name}: fix {run.case.fix} produced no config to retrain")
    config = load_recipe_config(str(result.config_path), list(extra or []))
    run_dir, crashed = _train(config, out_dir / "fixed")
    if crashed:
        raise RuntimeError(f"zoo case {run.case.name}: the fixed run failed: {crashed}")
    report = diagnose_run(run.case, run_dir, doctor)
    _save_report(report, out_dir / "fixed.report.json")
    return CaseRun(run.case, run_dir, report, time.time() - start, extra={"fix": result.out_dir})
