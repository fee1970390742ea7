"""Every fix-recipe by id: ``REGISTRY``, ``get(recipe_id)`` and ``for_probe(probe_id)``.

Its own module so ``recipes.fixes.apply`` can look fixes up without importing the package that re-exports it.
"""

from __future__ import annotations

import difflib

from ehrdebug.errors import UserError
from recipes.fixes import causal, codemodels, decoding, embeddings, sequence_models, tokens, training
from recipes.fixes.base import Fix

# a new fix module joins by adding its name here (each module lists its fixes in FIXES)
FIX_MODULES = (tokens, embeddings, decoding, training, codemodels, causal, sequence_models)
REGISTRY: dict[str, Fix] = {fix.id: fix for module in FIX_MODULES for fix in module.FIXES}


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
