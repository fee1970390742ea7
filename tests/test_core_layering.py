"""Dependencies flow one way: core ← probes ← recipes ← CLI/TUI (checked on the source, statically)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for file in files:
        for name in _imports(file):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{file.relative_to(REPO)} imports {name}")
    return bad


def _core_files() -> list[Path]:
    shells = (REPO / "ehrdebug" / "cli", REPO / "ehrdebug" / "tui")
    entry = REPO / "ehrdebug" / "__main__.py"  # ``python -m ehrdebug`` is the shell's entry point
    return [p for p in (REPO / "ehrdebug").rglob("*.py") if p != entry and not any(s in p.parents for s in shells)]


def test_core_imports_no_probe_recipe_shell_or_textual() -> None:
    assert _violations(_core_files(), ("probes", "recipes", "ehrdebug.cli", "ehrdebug.tui", "textual")) == []


def test_probes_import_no_recipes_or_shells() -> None:
    files = list((REPO / "probes").rglob("*.py"))
    assert _violations(files, ("recipes", "ehrdebug.cli", "ehrdebug.tui", "textual")) == []


def test_recipes_import_no_shells() -> None:
    files = list((REPO / "recipes").rglob("*.py"))
    assert _violations(files, ("ehrdebug.cli", "ehrdebug.tui", "textual")) == []


def test_no_module_is_much_over_400_lines() -> None:
    long = []
    for root in ("ehrdebug", "probes", "recipes"):
        for path in (REPO / root).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > 450:
                long.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert long == []
