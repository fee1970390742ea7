"""Fix-recipes: each answers findings (by probe id) and writes a changed copy of a config or checkpoint.

Public API::

    REGISTRY: dict[str, Fix]            # every FIX id of ehrdebug.recipe_ids
    get(recipe_id) -> Fix               # UserError naming the closest id when unknown
    resolve_target(path) -> Target      # a YAML config, a checkpoint dir or a run dir
    apply_fixes(path, ids, out_dir) -> FixResult
    auto_plan(path) -> AutoPlan         # what the doctor's findings ask for (fix ids + advice)

Each ``Fix`` has ``id``, ``answers`` (probe ids), ``applies_to`` ("config", "checkpoint"),
``describe()``, ``preview(target) -> list[str]`` and ``apply(target, out_dir) -> Path``.
"""

from __future__ import annotations

import difflib

from ehrdebug.errors import UserError
from recipes.fixes import decoding, embeddings, tokens, training
from recipes.fixes.base import Change, Fix, Target, resolve_target

REGISTRY: dict[str, Fix] = {fix.id: fix for module in (tokens, embeddings, decoding, training) for fix in module.FIXES}


def get(recipe_id: str) -> Fix:
    if recipe_id in REGISTRY:
        return REGISTRY[recipe_id]
    from ehrdebug.recipe_ids import ADVICE

    if recipe_id in ADVICE:
        raise UserError(f"{recipe_id!r} is advice, not an automatic fix: {ADVICE[recipe_id]}")
    close = difflib.get_close_matches(recipe_id, list(REGISTRY), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; see 'ehrdebug fix --list'"
    raise UserError(f"unknown fix-recipe {recipe_id!r}{hint}")


def for_probe(probe_id: str) -> list[Fix]:
    """Fixes that declare they answer ``probe_id``."""
    return [fix for fix in REGISTRY.values() if probe_id in fix.answers]


from recipes.fixes.apply import AutoPlan, FixResult, apply_fixes, auto_plan  # noqa: E402

__all__ = [
    "REGISTRY",
    "AutoPlan",
    "Change",
    "Fix",
    "FixResult",
    "Target",
    "apply_fixes",
    "auto_plan",
    "for_probe",
    "get",
    "resolve_target",
]
