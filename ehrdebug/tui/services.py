"""The functions the screens call, gathered in one place (imports are lazy so the TUI starts fast).

Nothing here is TUI logic: each helper forwards to the run store, the probes or the recipes, or builds
the command line of the same CLI command a user would type (``doctor``, ``train``), so the TUI and the
CLI always do the same thing.
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


def checkpoint_for(run: Any) -> Path:
    """The latest checkpoint of a run, or the run directory itself (an HF output dir, a model dir)."""
    latest = run.latest_checkpoint()
    return Path(latest.path) if latest is not None else Path(run.path)


def cli_command(*args: str) -> list[str]:
    """``ehrdebug ARGS`` run with this interpreter (works in a venv without the script on PATH)."""
    return [*CLI, *args]


def doctor_command(path: str | os.PathLike[str]) -> list[str]:
    return cli_command("doctor", str(path), "--format", "json")


TRAIN_FALLBACK = (
    "import sys; from recipes.train import load_config, run_training; "
    "run_training(load_config(sys.argv[1], sys.argv[2:]))"
)


def train_command(config: str | os.PathLike[str], overrides: dict[str, Any]) -> list[str]:
    """``ehrdebug train CONFIG key=value …``; where that command is not installed, the function it runs."""
    import importlib.util

    args = [str(config), *(f"{k}={v}" for k, v in overrides.items())]
    if importlib.util.find_spec("ehrdebug.cli.train_cmd") is not None:
        return cli_command("train", *args)
    return [sys.executable, "-c", TRAIN_FALLBACK, *args]


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
