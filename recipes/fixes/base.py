"""What a fix-recipe is, and the targets it works on.

A fix never touches the user's files: it reads a *target* (a training config YAML, a model checkpoint
directory, or an ehrdebug run directory) and writes the changed copy to a new directory, recording
what it changed in a ``fixes`` list (in the fixed config and in ``fixes.json`` beside it).

Two kinds of change exist. A *config* change edits the training config so the next ``ehrdebug train``
does the right thing (register ``<demo>``, stop early, block the pretrained EOS). A *checkpoint*
change performs the surgery on a saved model/tokenizer directly (add tokens, re-initialise rows,
change ``generation_config.json``) so a trained model can be repaired without retraining.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError

CONFIG = "config"
CHECKPOINT = "checkpoint"


@dataclass
class Change:
    """One edit: a dotted key (or a model part) with its value before and after."""

    key: str
    before: Any
    after: Any
    note: str = ""

    def text(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.key}: {_short(self.before)} -> {_short(self.after)}{note}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "before": self.before, "after": self.after, "note": self.note}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Target:
    """A resolved thing to fix. ``config`` is the training config dict (loaded, never mutated in place);
    ``checkpoint`` the model directory when one exists."""

    path: Path
    kind: str  # "config" | "checkpoint" | "run"
    config: dict[str, Any] | None = None
    config_path: Path | None = None
    checkpoint: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_config(self) -> bool:
        return self.config is not None


ConfigFn = Callable[[dict[str, Any], Target], list[Change]]
CheckpointFn = Callable[[Path, Path | None, Target], list[Change]]


@dataclass
class Fix:
    """A fix-recipe: which findings it answers (probe ids) and how it changes a config or a checkpoint.

    ``on_config(cfg, target)`` edits ``cfg`` in place and returns the changes; ``on_checkpoint(src, dst,
    target)`` computes the surgery on ``src`` and, when ``dst`` is not None, saves the result there
    (``dst is None`` is a dry run for ``preview``).
    """

    id: str
    answers: tuple[str, ...]
    summary: str
    on_config: ConfigFn | None = None
    on_checkpoint: CheckpointFn | None = None

    @property
    def applies_to(self) -> tuple[str, ...]:
        kinds = []
        if self.on_config is not None:
            kinds.append(CONFIG)
        if self.on_checkpoint is not None:
            kinds.append(CHECKPOINT)
        return tuple(kinds)

    def describe(self) -> str:
        return f"{self.id}: {self.summary} (answers {', '.join(self.answers)}; applies to {', '.join(self.applies_to)})"

    def mode_for(self, target: Target) -> str:
        """Prefer editing the config (the user retrains); fall back to checkpoint surgery."""
        if target.has_config and self.on_config is not None:
            return CONFIG
        if target.checkpoint is not None and self.on_checkpoint is not None:
            return CHECKPOINT
        wants = " or ".join(self.applies_to)
        raise UserError(f"fix {self.id!r} needs a {wants} but {target.path} gives none")

    def preview(self, target: Target | str | os.PathLike[str]) -> list[str]:
        """What ``apply`` would change, in words, without writing anything."""
        target = resolve_target(target) if not isinstance(target, Target) else target
        if self.mode_for(target) == CONFIG:
            changes = self.on_config(copy.deepcopy(target.config), target)  # type: ignore[misc,arg-type]
        else:
            changes = self.on_checkpoint(target.checkpoint, None, target)  # type: ignore[misc,arg-type]
        return [c.text() for c in changes] or ["nothing to change (already applied)"]


# -- targets ------------------------------------------------------------------------------------


def is_checkpoint_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_target(path: str | os.PathLike[str]) -> Target:
    """Work out what ``path`` is: a YAML config, a checkpoint directory, or a run directory."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"not found: {p}")
    if p.is_file():
        if p.suffix.lower() not in (".yaml", ".yml"):
            raise UserError(f"expected a training config (.yaml), a checkpoint or a run directory, got {p}")
        return Target(path=p, kind=CONFIG, config=load_yaml(p), config_path=p)
    if (p / "run.json").is_file():
        info = _read_json(p / "run.json")
        cfg = info.get("config") or None
        ckpt = _latest_checkpoint(p)
        return Target(path=p, kind="run", config=dict(cfg) if cfg else None, checkpoint=ckpt, info=info)
    if is_checkpoint_dir(p):
        return Target(path=p, kind=CHECKPOINT, checkpoint=p)
    ckpt = _latest_checkpoint(p)
    if ckpt is not None:
        return Target(path=p, kind=CHECKPOINT, checkpoint=ckpt)
    raise UserError(
        f"{p} is not a training config, a run directory (run.json) or a model checkpoint (config.json)"
    )


def _latest_checkpoint(run_dir: Path) -> Path | None:
    """``checkpoints/step-N`` (ehrdebug runs) or ``checkpoint-N`` (HF output dirs), highest N."""
    candidates: list[tuple[int, Path]] = []
    for parent, prefix in ((run_dir / "checkpoints", "step-"), (run_dir, "checkpoint-")):
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.name.startswith(prefix) and is_checkpoint_dir(child):
                try:
                    candidates.append((int(child.name[len(prefix) :]), child))
                except ValueError:
                    continue
    if candidates:
        return max(candidates)[1]
    for name in ("best", "final", "model"):
        if is_checkpoint_dir(run_dir / name):
            return run_dir / name
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc


def load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"config {path} is not a mapping of keys to values")
    return data


def dump_yaml(data: dict[str, Any], path: Path, header: str = "") -> None:
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.write_text((header + text) if header else text, encoding="utf-8")


def new_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """A fresh directory: refuse to write into one that already has content (never overwrite)."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output directory {out} already exists and is not empty; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def default_out_dir(path: Path) -> Path:
    """``PATH-fixed`` beside the target (``-fixed-2``, ``-3`` … when taken); a config file loses its suffix."""
    stem = path.with_suffix("") if path.is_file() else path
    candidate = Path(f"{stem}-fixed")
    n = 2
    while candidate.exists():
        candidate = Path(f"{stem}-fixed-{n}")
        n += 1
    return candidate


def fix_record(fix: Fix, mode: str, changes: list[Change]) -> dict[str, Any]:
    return {
        "id": fix.id,
        "answers": list(fix.answers),
        "mode": mode,
        "changes": [c.to_dict() for c in changes],
        "time": time.time(),
    }


# -- dotted keys ---------------------------------------------------------------------------------

_MISSING = object()


def get_key(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_key(cfg: dict[str, Any], dotted: str, value: Any, changes: list[Change], note: str = "") -> None:
    """Set ``dotted`` to ``value`` and record a Change when it differs."""
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    before = node.get(parts[-1], None)
    if before == value and parts[-1] in node:
        return
    node[parts[-1]] = value
    changes.append(Change(dotted, before, value, note))


def setting(key: str, value: Any, note: str, when: Callable[[Any], bool] | None = None) -> ConfigFn:
    """The most common config fix: set one key (only ``when`` its current value, or ``MISSING``, passes)."""

    def apply(cfg: dict[str, Any], target: Target) -> list[Change]:
        changes: list[Change] = []
        if when is None or when(get_key(cfg, key, MISSING)):
            set_key(cfg, key, value, changes, note)
        return changes

    return apply


MISSING = _MISSING  # what ``setting``'s ``when`` sees for a key the config does not have
