"""Baseline configs: YAML over each baseline's declared defaults, with ``key=value`` overrides.

Every key a baseline reads is declared (shared keys here, its own in its module's ``DEFAULTS``), so an
unknown key (a typo) is a one-line error naming the closest known key, as for the training loop's configs.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

SHARED: dict[str, Any] = {
    "recipe": "logreg",
    "task": "mortality",  # mortality | next_visit (recipes.baselines.tasks.TASKS)
    "label_field": "mortality",
    "size": "small",
    "out": "runs/baseline",
    "seed": 0,
    "threads": 1,
    "device": "cpu",
    "bootstrap": 200,  # bootstrap resamples of the test intervals (0 = none)
    "data": {"root": None, "max_train": None},
}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _check_type(name: str, value: Any, default: Any, where: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"{where}: {name}: expected true or false (got {value!r})")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: {name}: expected a number (got {value!r})")
        if isinstance(default, int) and not isinstance(value, int) and float(value).is_integer():
            return int(value)
        return value
    if isinstance(default, list) and not isinstance(value, list):
        raise UserError(f"{where}: {name}: expected a list (got {value!r})")
    return value


def _set(config: dict[str, Any], dotted: str, value: Any, known: dict[str, Any], where: str) -> None:
    if dotted not in known:
        match = difflib.get_close_matches(dotted, list(known), n=1, cutoff=0.5)
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        raise UserError(f"{where}: unknown config key {dotted!r}{hint}")
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = _check_type(dotted, value, known[dotted], where)


def build_config(
    defaults: dict[str, Any], data: dict[str, Any], overrides: list[str], where: str
) -> dict[str, Any]:
    """Shared defaults ← the baseline's defaults ← the YAML mapping ← ``key=value`` overrides."""
    from recipes.train.config import parse_value

    config = copy.deepcopy(SHARED)
    for key, value in _flat(defaults).items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    known = _flat(config)
    for key, value in _flat(data).items():
        _set(config, key, value, known, where)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise UserError(f"override: expected key=value, got {item!r}")
        _set(config, key, parse_value(raw), known, "override")
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{p}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of config keys at the top level")
    return data
