"""``compare_runs``: the benchmark's table and plots from runs that already exist.

What ``ehrdebug compare RUN RUN ...`` prints and writes, and what the TUI's Compare screen can call:
``compare_runs(paths, out_dir=None) -> Comparison`` (rows as in ``bench.json``; files only when
``out_dir`` is given). A path may also be a benchmark folder (its ``runs/*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)

    def markdown(self) -> str:
        from recipes.bench.report import table_lines

        return "\n".join(table_lines(self.rows))


def expand(paths: list[str | Path]) -> list[Path]:
    """Run directories: each path itself, or the runs of a benchmark folder (``runs/*``)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"run not found: {p}")
        if (p / "run.json").is_file() or (p / "events.jsonl").is_file():
            out.append(p)
        elif (p / "runs").is_dir():
            out.extend(sorted(d for d in (p / "runs").iterdir() if (d / "run.json").is_file()))
        else:
            raise UserError(f"{p} is neither an ehrdebug run nor a benchmark folder")
    if not out:
        raise UserError("no runs to compare")
    return out


def compare_runs(
    paths: list[str | Path], out_dir: str | Path | None = None, bootstrap: int = 200, seed: int = 0
) -> Comparison:
    from recipes.bench.table import Entry, build_rows

    runs = expand(paths)
    if out_dir is not None and Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise UserError(
            f"{out_dir} is not empty; choose a new folder for the comparison (nothing is overwritten)"
        )
    names: dict[str, int] = {}
    entries = []
    for run in runs:
        name = run.name
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{run.parent.name}/{run.name}"
        entries.append(Entry(model=name, run_dir=run))
    rows = build_rows(entries, bootstrap=bootstrap, seed=seed)
    files: dict[str, Path] = {}
    if out_dir is not None:
        from recipes.bench.report import write_outputs

        out = Path(out_dir)
        files = write_outputs(
            out, rows, {"runs": [str(r) for r in runs]}, "Comparison", json_name="compare.json"
        )
    return Comparison(rows=rows, files=files)
