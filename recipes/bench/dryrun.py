"""``ehrdebug bench CONFIG --dry-run``: every listed model's config checked and its model built; nothing trained.

Why: the medium and large tiers are meant for an M1 or an A40 pod; a typo in a config, an override a model
does not have or a model that cannot be built must show on the laptop in seconds, not an hour into a rented
GPU. Per model: its config validated by its runner exactly as ``bench`` would (the training layer's schema,
or the baseline's declared keys, with the benchmark's shared settings and the model's overrides applied),
its ``init_from`` checked against the models listed before it, and its model built without weights (the
meta device for the training layer's models; the baselines' own ``size``) for its parameter counts. Nothing
is written; the output folder is not even created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ehrdebug.errors import UserError


def dry_run_bench(
    path: str | Path, overrides: list[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the benchmark config, one row per model: status ok | invalid | skipped, parameters, planned steps, note)."""
    from recipes.bench.bench import _shared, load_bench_config, model_config_of

    config = load_bench_config(path, overrides)
    shared = _shared(config)
    rows: list[dict[str, Any]] = []
    shapes: dict[str, dict[str, Any]] = {}
    for model in config["models"]:
        name, start = model["name"], model.get("init_from")
        row: dict[str, Any] = {"model": name, "config": model["config"], "status": "ok", "baseline": bool(model.get("baseline")),
                               "scored": bool(model.get("score", True))}  # fmt: skip
        try:
            runner, model_config = model_config_of(model, shared)
            row.update(runner=runner.name, recipe=model_config.get("recipe"))
            if start:
                if start not in shapes:
                    listed = (
                        "is not valid"
                        if any(r["model"] == start for r in rows)
                        else "is not listed before it"
                    )
                    raise UserError(f"init_from: {start!r} {listed}")
                runner.init_from(model_config, Path(start))  # a runner that cannot start from a run says so
            row["planned_steps"] = runner.planned_steps(model_config)
            row.update(runner.dry_run(model_config))
            shape = row.pop("shape", None) or {}
            if start:
                row["note"] = f"starts from {start}'s weights and tokenizer"
                differ = [
                    f"{k} {v} vs {shapes[start][k]}" for k, v in shape.items() if shapes[start].get(k, v) != v
                ]
                if differ:  # a size or model.* key of one of the two: training takes init_from's shape
                    row["note"] += (f"; its configured shape differs from {start}'s ({', '.join(differ)}): at train "
                                    f"time it takes {start}'s, the counts here are the configured one's")  # fmt: skip
            shapes[name] = shape
        except Exception as exc:  # noqa: BLE001 - every model is checked; each problem is reported on its row
            missing = (
                isinstance(exc, UserError)
                and str(exc).startswith("config not found")
                and model.get("optional")
            )
            row["status"] = "skipped" if missing else "invalid"
            row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400]
        rows.append(row)
    return config, rows


def dry_run_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The dry run's table (markdown), one line per model."""

    def count(n: Any) -> str:
        return f"{int(n):,}" if isinstance(n, (int, float)) else "—"

    head = ("model", "runner", "recipe", "tier", "params", "trainable", "planned steps", "status", "note")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        role = " (baseline)" if r.get("baseline") else "" if r.get("scored") else " (not scored)"
        note = r.get("error") or r.get("note") or ""
        lines.append("| " + " | ".join([f"{r['model']}{role}", str(r.get("runner") or "—"), str(r.get("recipe") or "—"),
                                        str(r.get("tier") or "—"), count(r.get("parameters")), count(r.get("trainable_parameters")),
                                        count(r.get("planned_steps")), r["status"], note.replace("|", "\\|")]) + " |")  # fmt: skip
    return lines
