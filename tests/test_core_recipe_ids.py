"""Every recipe id a probe can name exists in the catalogue, and every FIX id has an implementation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ehrdebug.recipe_ids import ADVICE, ALL, FIX

REPO = Path(__file__).resolve().parents[1]
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)+$")
# kebab-case strings in probes that are not recipe ids (encodings, folder names, labels)
NOT_RECIPES = {"utf-8", "ehrdebug-doctor", "like-base", "lower-cased"}


def _kebab_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and KEBAB.match(n.value)}


def test_probes_name_only_catalogued_recipes() -> None:
    unknown = {}
    for path in (REPO / "probes").glob("*.py"):
        missing = _kebab_literals(path) - set(ALL) - NOT_RECIPES
        if missing:
            unknown[path.name] = sorted(missing)
    assert unknown == {}


def test_every_fix_id_is_implemented_and_advice_is_not() -> None:
    from recipes.fixes import REGISTRY

    assert set(REGISTRY) == set(FIX)
    assert not set(ADVICE) & set(REGISTRY)
    for rid, fix in REGISTRY.items():
        assert fix.describe() and fix.answers, rid
