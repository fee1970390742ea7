"""The functions the screens call, gathered in one place (imports are lazy so the TUI starts fast).

Nothing here is TUI logic: each helper forwards to the run store, the probes or the recipes, or builds
the command line of the same CLI command a user would type (``doctor``, ``train``), so the TUI and the
CLI always do the same thing. The screens hold no logic of their own: the findings screen shows what
``saved_findings`` returns and runs the doctor through ``start_doctor`` (the same ``probes.doctor.diagnose``
as ``ehrdebug doctor``, on the run itself); the fix screen plans, previews and applies fixes here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-c", "from ehrdebug.cli.app import run; run()"]


def open_run(path: str | os.PathLike[str]) -> Any:
    from ehrdebug.runstore import open_run as _open

    return _open(path)


def discover_runs(root: str | os.PathLike[str]) -> list[Any]:
    from ehrdebug.runstore import discover_runs as _discover

    return _discover(root)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    from ehrdebug.runstore.reader import is_run_dir as _is_run

    return _is_run(Path(path))


def events_path(run: Any) -> Path | None:
    path = getattr(run, "events_path", None)
    return Path(path) if path is not None else None


def doctor_target(run: Any) -> Path:
    """What the doctor diagnoses for a run: the run itself (its curves, data, config and final checkpoint),
    exactly as ``ehrdebug doctor RUN`` does."""
    return Path(run.path)


def checkpoint_for(run: Any) -> Path:
    """The latest checkpoint of a run (the one core lookup, ``ehrdebug.loading.latest_checkpoint``; a step that
    holds only a tokenizer counts), or the run directory itself (an HF output dir, a model dir)."""
    from ehrdebug.loading import latest_checkpoint

    return latest_checkpoint(run.path, model=False) or Path(run.path)


def cli_command(*args: str) -> list[str]:
    """``ehrdebug ARGS`` run with this interpreter (works in a venv without the script on PATH)."""
    return [*CLI, *args]


def doctor_command(path: str | os.PathLike[str]) -> list[str]:
    return cli_command("doctor", str(path), "--format", "json")


def diagnose(path: str | os.PathLike[str], data: str | None = None, allow_pickle: bool = False) -> Any:
    """The one doctor (``probes.doctor.diagnose``), in this process: what ``ehrdebug doctor`` runs."""
    from probes.doctor import diagnose as _diagnose

    return _diagnose(path, data=data, allow_pickle=allow_pickle)


DOCTOR_REPORT = "doctor-report.json"  # the copy the TUI keeps in the run's artifacts/ after running the doctor


class DoctorJob:
    """``ehrdebug doctor PATH --format json`` in its own process: cancelling really stops the work."""

    def __init__(self, path: str | os.PathLike[str], artifacts_dir: str | os.PathLike[str]) -> None:
        self.cmd = doctor_command(path)
        self.artifacts = Path(artifacts_dir)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.out_path = self.artifacts / (DOCTOR_REPORT + ".partial")
        self.log_path = self.artifacts / "doctor.log"
        with open(self.out_path, "wb") as out, open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err, start_new_session=True)

    @property
    def description(self) -> str:
        return describe_command(self.cmd)

    def running(self) -> bool:
        return self.proc.poll() is None

    def cancel(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.out_path.unlink(missing_ok=True)

    def report(self) -> Any:
        """The finished doctor's report, kept as ``artifacts/doctor-report.json``; ValueError with the last log
        line when it printed none."""
        text = self.out_path.read_text(encoding="utf-8", errors="replace")
        try:
            report = report_from_json(text)
        except ValueError:
            self.out_path.unlink(missing_ok=True)
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise ValueError(f"doctor failed (exit {self.proc.returncode}): {' '.join(tail)[:200]}") from None
        self.out_path.replace(self.artifacts / DOCTOR_REPORT)
        return report


def start_doctor(path: str | os.PathLike[str], artifacts_dir: str | os.PathLike[str]) -> DoctorJob:
    return DoctorJob(path, artifacts_dir)


def saved_findings(run: Any) -> tuple[list[Any], str]:
    """The run's logged findings plus its newest saved doctor report (``ehrdebug doctor`` writes
    ``artifacts/doctor/``, the TUI ``artifacts/doctor-report.json``), and where they came from."""
    import json
    import time

    from ehrdebug.findings import Report
    from probes.doctor_reports import find_saved_report

    logged = list(run.findings())
    source = "logged by the run" if logged else ""
    try:
        saved = find_saved_report(run.path)
    except Exception:  # noqa: BLE001 - an unreadable run folder shows no saved report, it does not crash
        saved = None
    if saved is None:
        return logged, source
    try:
        report = Report.from_dict(json.loads(saved.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return logged, f"unreadable {saved.name}: {exc}"
    when = time.strftime("%H:%M", time.localtime(saved.stat().st_mtime))
    return report.findings + logged, f"doctor report ({when})" + (f" + {source}" if source else "")


# -- fixes (the same planner, previews and apply as ``ehrdebug fix``) -----------------------------------
def plan_fixes(findings: list[Any]) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """``[(fix id, why, preselected)]`` from warn/fail findings first, then every other fix, and the
    advice ids the findings name (shown, never applied)."""
    from ehrdebug.recipe_ids import ADVICE
    from recipes.fixes import REGISTRY
    from recipes.fixes.apply import named_recipes

    named = named_recipes(findings)
    rows = [(rid, "; ".join(f.title for f in found), True) for rid, found in named.items() if rid in REGISTRY]
    rows += [(rid, fix.summary, False) for rid, fix in REGISTRY.items() if rid not in named]
    return rows, [rid for rid in named if rid in ADVICE]


def preview_fixes(path: str | os.PathLike[str], ids: list[str]) -> list[tuple[str, list[str]]]:
    """What each fix would change in ``path`` (``ehrdebug fix --dry-run``); a UserError when ``path`` is no target."""
    from ehrdebug.errors import UserError
    from recipes.fixes import get, resolve_target

    target = resolve_target(path)
    out = []
    for rid in ids:
        try:
            lines = get(rid).preview(target)
        except UserError as exc:
            lines = [f"cannot apply here: {exc}"]
        except Exception as exc:  # noqa: BLE001 - one broken preview must not hide the others
            lines = [f"preview failed: {type(exc).__name__}: {exc}"]
        out.append((rid, lines))
    return out


def fix_out_dir(path: str | os.PathLike[str], wanted: str | os.PathLike[str] | None = None) -> Path:
    """``wanted`` when it does not exist yet, else the default new ``PATH-fixed`` directory."""
    from recipes.fixes.base import default_out_dir

    return Path(wanted) if wanted and not Path(wanted).exists() else default_out_dir(Path(path))


def apply_fixes(path: str | os.PathLike[str], ids: list[str], out: str | os.PathLike[str]) -> Any:
    from recipes.fixes import apply_fixes as _apply

    return _apply(path, ids, Path(out), skip_inapplicable=True)


def retrain_run_dir(result: Any, overrides: dict[str, Any]) -> Path:
    """Where ``ehrdebug train FIXED/config.yaml`` will write the new run."""
    from recipes.fixes.base import load_yaml

    config = load_yaml(Path(result.config_path))
    return Path(str(overrides.get("out") or config.get("out") or Path(result.out_dir) / "run"))


def train_command(config: str | os.PathLike[str], overrides: dict[str, Any]) -> list[str]:
    """``ehrdebug train CONFIG key=value …``, run with this interpreter."""
    return cli_command("train", str(config), *(f"{k}={v}" for k, v in overrides.items()))


def spawn(
    cmd: list[str], log_path: str | os.PathLike[str] | None = None, cwd: str | None = None
) -> subprocess.Popen[bytes]:
    """Start a separate process (its own session so it survives a closed TUI only if the user wants)."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True
    )


def describe_command(cmd: list[str]) -> str:
    """How the same command reads when typed (``ehrdebug doctor …``)."""
    args = cmd[len(CLI) :] if cmd[: len(CLI)] == CLI else cmd
    return "ehrdebug " + " ".join(shlex.quote(a) for a in args)


def report_from_json(text: str) -> Any:
    import json

    from ehrdebug.findings import Report

    start = text.find("{")
    if start < 0:
        raise ValueError("the doctor printed no JSON report")
    return Report.from_dict(json.loads(text[start:]))


def recipe_description(recipe_id: str) -> str:
    from ehrdebug.recipe_ids import describe

    return describe(recipe_id)


def is_fix_recipe(recipe_id: str) -> bool:
    from ehrdebug.recipe_ids import FIX

    return recipe_id in FIX


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """A transformers tokenizer (the collator and generate need one), whatever the layout."""
    from ehrdebug.tokenizers import load_transformers_tokenizer

    return load_transformers_tokenizer(os.fspath(path))


def project_config(start: str | os.PathLike[str] | None = None) -> Any:
    from ehrdebug.config import load_config

    try:
        return load_config(str(start) if start else None)
    except Exception:  # noqa: BLE001 - a broken project config must not keep the TUI from opening
        from ehrdebug.config import EhrDebugConfig

        return EhrDebugConfig()


# -- compare (the same table as ``ehrdebug compare``) ----------------------------------------------------
def bench_table(
    paths: list[str | os.PathLike[str]], bootstrap: int = 200
) -> tuple[tuple[str, ...], list[list[str]], list[str]]:
    """The benchmark table of these runs as ``ehrdebug compare`` prints it (``recipes.bench.compare``):
    (columns, one row of cells per run, notes such as "no test predictions: no intervals")."""
    from recipes.bench.compare import compare_runs
    from recipes.bench.report import HEAD, table_cells

    rows = compare_runs([Path(p) for p in paths], bootstrap=bootstrap).rows
    notes = [
        f"{r['model']}: {r.get('note') or r['p_value_note']}"
        for r in rows
        if r.get("note") or r.get("p_value_note")
    ]
    return HEAD, table_cells(rows), notes
