"""Fix-recipes: each answers findings (by probe id) and writes a changed copy of a config or checkpoint.

Public API::

    REGISTRY: dict[str, Fix]            # every FIX id of ehrdebug.recipe_ids
    get(recipe_id) -> Fix               # UserError naming the closest id when unknown
    resolve_target(path) -> Target      # a YAML config, a checkpoint dir or a run dir
    apply_fixes(path, ids, out_dir) -> FixResult
    auto_plan(path) -> AutoPlan         # what the doctor's findings ask for (fix ids + advice)

Each ``Fix`` has ``id``, ``answers`` (probe ids), ``applies_to`` ("config", "checkpoint"),
``describe()`` and ``preview(target) -> list[str]``; ``apply_fixes`` writes the fixed copy. New fix modules
join ``recipes.fixes.registry.FIX_MODULES``.
"""

from __future__ import annotations

from recipes.fixes.apply import AutoPlan, FixResult, apply_fixes, auto_plan
from recipes.fixes.base import Change, Fix, Target, resolve_target
from recipes.fixes.registry import REGISTRY, for_probe, get

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
