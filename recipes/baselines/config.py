"""Baseline configs on the training layer's one schema (``recipes.train.schema``): declared keys, pydantic checks.

Every key a baseline reads is declared once as ``dotted.name -> Key(type, default, doc)`` (shared keys here,
its own in its module's ``KEYS``), exactly as a training task declares its keys; the defaults are assembled
from those declarations and the merged config is validated by the same pydantic model builder
(``schema.validate``), so ``train.lr=nan`` or ``model.max_depth=0`` is a one-line error before anything
trains. An unknown key (a typo) is a one-line error naming the closest known key, as for the loop's configs.
What stays here is what the loop's loader does not do for a baseline: merging the YAML and ``key=value``
overrides over the baseline's own key set (the loop's loader looks keys up by training task).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from ehrdebug.errors import UserError
from recipes.train.schema import Key, NonNegInt, PosInt, defaults_of, validate

SHARED: dict[str, Key] = {
    "recipe": Key(str, "logreg", "which baseline trains (recipes.baselines.registry.BASELINES)"),
    "task": Key(str, "mortality", "mortality | next_visit (recipes.baselines.tasks.TASKS)"),
    "label_field": Key(str, "mortality", "the 0/1 field of the records a mortality baseline predicts"),
    "size": Key(
        Literal["tiny", "small", "medium", "large"], "small", "size tier (for run.json and the benchmark)"
    ),
    "out": Key(str, "runs/baseline", "run directory; must be new or empty"),
    "seed": Key(NonNegInt, 0, "seeds numpy, torch, python random and the data order"),
    "threads": Key(NonNegInt, 1, "torch CPU threads; 0 = torch's default"),
    "device": Key(
        Literal["auto", "cuda", "mps", "cpu"], "cpu", "recorded in run.json; the baselines train on the CPU"
    ),
    "bootstrap": Key(NonNegInt, 200, "bootstrap resamples of the test intervals (0 = none)"),
    "data.root": Key(
        str | None, None, "a folder of {train,validation,test}.jsonl code records; null = the shipped sample"
    ),
    "data.max_train": Key(PosInt | None, None, "cap on training records"),
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


def _set(config: dict[str, Any], dotted: str, value: Any, keys: dict[str, Key], where: str) -> None:
    if dotted not in keys:
        match = difflib.get_close_matches(dotted, list(keys), n=1, cutoff=0.5)
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        raise UserError(f"{where}: unknown config key {dotted!r}{hint}")
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def build_config(
    keys: dict[str, Key], defaults: dict[str, Any], data: dict[str, Any], overrides: list[str], where: str
) -> dict[str, Any]:
    """Declared defaults (with the baseline's ``defaults`` for some of them) ← the YAML mapping ← ``key=value``
    overrides, then validated against ``keys`` (``schema.validate``: one-line UserError on the first problem)."""
    from recipes.train.config import parse_value

    config = defaults_of(keys, defaults)
    for key, value in _flat(data).items():
        _set(config, key, value, keys, where)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise UserError(f"override: expected key=value, got {item!r}")
        _set(config, key, parse_value(raw), keys, "override")
    return validate(config, keys, where)


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
