"""The baselines by name: the benchmark and ``ehrdebug train`` look them up here (no code branches on names).

A config names its baseline with ``recipe:`` (as a training-loop config names its task). Adding a
baseline: a module with an object that has ``NAME``, ``ARCHITECTURE``, ``TASKS``, ``KEYS`` (its own config
keys, ``recipes.train.schema.Key`` as a training task declares them), ``DEFAULTS`` (its defaults of shared keys),
``planned_steps(config)``, ``size(config) -> {parameters, trainable_parameters[, note]}`` (what
``ehrdebug bench --dry-run`` reports without training) and ``train(config, out_dir) -> Path``, one line
in ``BASELINES`` and a ``recipes/configs/<name>_<task>_<size>.yaml``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

#: name → ``"module:attribute"`` (imported only when used)
BASELINES: dict[str, str] = {
    "logreg": "recipes.baselines.logreg:BASELINE",
    "xgboost": "recipes.baselines.gbt:BASELINE",
    "lstm": "recipes.baselines.lstm:BASELINE",
    "med2vec": "recipes.baselines.med2vec:BASELINE",
}


def get_baseline(name: str) -> Any:
    target = BASELINES.get(name)
    if target is None:
        raise UserError(f"unknown baseline {name!r} (expected one of: {', '.join(BASELINES)})")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def baseline_name(path: str | Path) -> str | None:
    """The baseline a config file's ``recipe:`` names, or None when it is not a baseline config."""
    from recipes.baselines.config import read_yaml

    p = Path(path)
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return None
    try:
        recipe = read_yaml(p).get("recipe")
    except UserError:
        return None
    return recipe if isinstance(recipe, str) and recipe in BASELINES else None


def load_baseline_config(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The baseline's defaults ← the YAML file ← ``key=value`` overrides (``recipe=`` may pick it)."""
    from recipes.baselines.config import SHARED, build_config, read_yaml

    data = read_yaml(path) if path is not None else {}
    overrides = list(overrides or [])
    name = next((o.split("=", 1)[1] for o in overrides if o.startswith("recipe=")), data.get("recipe"))
    baseline = get_baseline(str(name))
    config = build_config(
        {**SHARED, **baseline.KEYS},
        {**baseline.DEFAULTS, "recipe": baseline.NAME},
        data,
        overrides,
        str(path or "config"),
    )
    if config["task"] not in baseline.TASKS:
        raise UserError(
            f"{path or 'config'}: baseline {baseline.NAME!r} trains {', '.join(baseline.TASKS)}, not {config['task']!r}"
        )
    return config


def train_baseline(config: dict[str, Any], out_dir: str | Path | None = None) -> Path:
    """Train the baseline ``config["recipe"]`` names into ``out_dir`` (or ``config["out"]``); the run dir."""
    return get_baseline(config["recipe"]).train(config, out_dir)


def train_config_file(
    path: str, overrides: list[str], dry_run: bool = False
) -> tuple[dict[str, Any], Path | None] | None:
    """What ``ehrdebug train`` calls first: None when ``path`` is not a baseline config, else
    (resolved config, run dir or None on a dry run)."""
    if baseline_name(path) is None:
        return None
    config = load_baseline_config(path, overrides)
    return config, None if dry_run else train_baseline(config)
