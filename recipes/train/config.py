"""Recipe configs: YAML files over built-in defaults, with ``key=value`` overrides from the command line.

Every knob the seed-000/002 failures and fixes turn on is a key here, so a fix-recipe is a config edit.
Unknown keys are user errors (one line naming the closest key): a typo must never silently train the
wrong model for an hour on a rented GPU.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError
from recipes.train.schema import SHARED, Key, defaults_of, validate

#: the shared loop keys' defaults (a task's config is these plus the task's own keys and defaults)
DEFAULTS: dict[str, Any] = defaults_of(SHARED)


def recipe_keys(recipe: str) -> dict[str, Key]:
    """Every key a config of ``recipe`` may hold: the shared loop keys plus the task's declared ones."""
    from recipes.train.task import get_task

    return {**SHARED, **get_task(recipe).keys}


def flat_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        keys.append(name)
        if isinstance(value, dict):
            keys.extend(flat_keys(value, name + "."))
    return keys


def _closest(key: str, known: list[str]) -> str:
    owners = _owners(key)
    if owners:
        return f" (a key of {', '.join(owners)} only)"
    leaf = {k.rsplit(".", 1)[-1]: k for k in known}
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.5) or [
        leaf[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaf), n=1, cutoff=0.6)
    ]
    return f" (did you mean {match[0]!r}?)" if match else ""


def parse_value(text: str) -> Any:
    """``1e-4`` → 1e-4, ``true`` → True, ``null`` → None, ``[a, b]`` → list; otherwise the string."""
    import yaml

    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _owners(key: str) -> list[str]:
    """The recipes that declare ``key`` (a key of another task is named as such, not as a typo)."""
    from recipes.train.task import get_task, task_names

    owners = []
    for name in task_names():
        try:
            if key in get_task(name).keys:
                owners.append(name)
        except ImportError:  # a task whose optional dependencies are missing here
            continue
    return owners


def _merge(base: dict[str, Any], update: dict[str, Any], known: list[str], where: str, prefix: str = "") -> None:
    for key, value in update.items():
        name = f"{prefix}{key}"
        if name not in known:
            raise UserError(f"{where}: unknown config key {name!r}{_closest(name, known)}")
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge(base[key], value, known, where, name + ".")
        else:
            base[key] = value


def apply_overrides(config: dict[str, Any], overrides: list[str], where: str = "override") -> dict[str, Any]:
    """Apply ``a.b=value`` strings; an unknown key is a UserError that names the closest one."""
    known = list(recipe_keys(config.get("recipe", "bart_ehrgen"))) + flat_keys(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise UserError(f"{where}: expected key=value, got {item!r}")
        if key not in known:
            raise UserError(f"{where}: unknown config key {key!r}{_closest(key, known)}")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = parse_value(raw)
    return config


def default_config(recipe: str = "bart_ehrgen") -> dict[str, Any]:
    """The shared defaults, the task's own keys and the task's defaults for shared ones."""
    from recipes.train.task import get_task

    task = get_task(recipe)
    config = defaults_of(recipe_keys(recipe), task.defaults)
    config["recipe"] = recipe
    return config


def load_recipe_config(path: str | Path | None, overrides: list[str] | None = None, *,
                       check_device: bool = True) -> dict[str, Any]:
    """Defaults ← YAML file ← overrides, validated against the recipe's schema before anything runs.

    ``path`` may be None (the defaults of ``recipe=`` in the overrides). ``check_device=False`` skips only
    the "is that device here" check (``ehrdebug fix`` edits a GPU config on a laptop).
    """
    import yaml

    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise UserError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise UserError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"{p}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from exc
        if not isinstance(data, dict):
            raise UserError(f"{p}: expected a mapping of config keys at the top level")
    overrides = list(overrides or [])
    recipe = data.get("recipe", "bart_ehrgen")
    for item in overrides:
        if item.startswith("recipe="):
            recipe = item.split("=", 1)[1]
    from recipes.train.task import get_task

    get_task(str(recipe))  # an unknown recipe is a one-line error naming the registered ones
    config = default_config(recipe)
    _merge(config, data, flat_keys(config), where)
    apply_overrides(config, overrides)
    config = validate(config, recipe_keys(recipe), where)
    if check_device:
        _check_device(config, where)
    _resolve_shipped_paths(config)
    return config


def check_mapping(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A config already in memory (one ``ehrdebug fix`` is about to write) checked like a YAML file."""
    from recipes.train.task import get_task

    recipe = str(data.get("recipe", "bart_ehrgen"))
    get_task(recipe)
    config = default_config(recipe)
    _merge(config, data, flat_keys(config), where)
    return validate(config, recipe_keys(recipe), where)


def _resolve_shipped_paths(config: dict[str, Any]) -> None:
    """Shipped data named as ``sample_data/...`` (``base``, ``data.root``, ``data.codes``, ``data.codes_dir`` …)
    is found from the install, whatever the current folder; a user's own relative paths stay as written."""
    from ehrdebug.data.sample import SHIPPED, resolve_data_path

    for key, value in config.items():
        if isinstance(value, dict):
            _resolve_shipped_paths(value)
        elif isinstance(value, str) and value.replace("\\", "/").lstrip("./").startswith(SHIPPED + "/"):
            resolved = resolve_data_path(value)
            if resolved.is_absolute():
                config[key] = str(resolved)


def _check_device(config: dict[str, Any], where: str) -> None:
    """``device=cuda`` on a machine without CUDA must not fall back to the CPU silently."""
    if config["device"] not in ("cuda", "mps"):
        return
    import torch

    if config["device"] == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{where}: device=cuda but CUDA is not available here (use device=auto or device=cpu)")
    mps = getattr(torch.backends, "mps", None)
    if config["device"] == "mps" and not (mps is not None and mps.is_available()):
        raise UserError(f"{where}: device=mps but MPS is not available here (use device=auto or device=cpu)")
